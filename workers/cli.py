"""The operator's CLI entry point: `python -m workers.cli --help` (`make run` calls `run`).

The commands live in `app/cli/`; this launcher plugs the Celery side in first (importing
the Celery app installs its dispatcher), so `clm retrain` or the main run start real
tasks: eagerly in this process on the embedded default, on the workers otherwise.
"""

from __future__ import annotations

import workers.celery_app  # (installs the Celery dispatcher into app.bootstrap)
import workers.wsgi  # noqa: F401  (installs the API the main run's engine drives through the client)
from app.cli.main import main

if __name__ == "__main__":
    main()
