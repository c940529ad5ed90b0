"""gunicorn settings read from the working directory (the Procfile's `api`, docker-compose's `api`,
bench/live.py).

gunicorn's own error answers (414, 400, 431: refused before the application sees the request)
are JSON like every other error (workers/http_errors.py).

With PROMETHEUS_MULTIPROC_DIR set, the API's request metrics (app/api/request_metrics.py) are
written by every worker into that directory: it is created and emptied once, before the
workers fork, so counters do not carry over from an earlier run.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

# Threads per worker, with keep-alive: the trading engine keeps one connection open and asks
# many times a second (a new TCP connection per request, as the sync worker does, costs more
# than the prediction). Workers: `--workers` on the command line (2 in the Procfile and compose).
worker_class = "gthread"
threads = 4
keepalive = 30


def on_starting(server: Any) -> None:
    # Imported here: the project is importable only once gunicorn has put its directory on sys.path.
    from workers import http_errors

    http_errors.install()  # in the master, before the workers fork
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
