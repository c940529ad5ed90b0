"""The API's WSGI entry point: `gunicorn 'workers.wsgi:create_app()'`.

It plugs the Celery side in (importing the Celery app installs its dispatcher), then
builds the Flask application from `app.api`, which knows nothing of Celery.
"""

from __future__ import annotations

import workers.celery_app  # noqa: F401  (installs the Celery dispatcher into app.bootstrap)
from app.api import create_app
from app.simulation.api_client import install_wsgi_app_factory

install_wsgi_app_factory(create_app)  # the main run's engine calls this API in-process, through the client

__all__ = ["create_app"]
