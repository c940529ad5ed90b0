"""The API's WSGI entry point: `gunicorn 'workers.wsgi:create_app()'`.

It plugs the Celery side in (importing the Celery app installs its dispatcher), then
builds the Flask application from `app.api`, which knows nothing of Celery, and starts
loading the live models in the background (`app.prediction.preload`), in each gunicorn
worker (the factory runs after the fork).
"""

from __future__ import annotations

from flask import Flask

import workers.celery_app  # noqa: F401  (installs the Celery dispatcher into app.bootstrap)
from app.api import create_app as _create_app
from app.api.common import container_of
from app.core.container import Container
from app.prediction.preload import start_preload
from app.simulation.api_client import install_wsgi_app_factory


def create_app(container: Container | None = None) -> Flask:
    """The API, with its live models loading in the background (CLM_MODEL_PRELOAD, on by default)."""
    app = _create_app(container)
    app.extensions["clm_preloader"] = start_preload(container_of(app))
    return app


install_wsgi_app_factory(
    _create_app
)  # the main run's engine calls this API in-process (no preload thread beside its SQLite)

__all__ = ["create_app"]
