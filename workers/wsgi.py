"""The API's WSGI entry point: `gunicorn 'workers.wsgi:create_app()'`.

It plugs the Celery side in (importing the Celery app installs its dispatcher), then
builds the Flask application from `app.api`, which knows nothing of Celery.
"""

from __future__ import annotations

import workers.celery_app  # noqa: F401  (installs the Celery dispatcher into app.bootstrap)
from app.api import create_app

__all__ = ["create_app"]
