"""The Flask application factory (served by `gunicorn 'workers.wsgi:create_app()'`)."""

from __future__ import annotations

from flask import Blueprint, Flask

from app.api import (
    dashboard,
    drift,
    health,
    jobs,
    models,
    monitoring,
    outcomes,
    policy,
    predictions,
    rl,
    shadow,
    status,
)
from app.api.errors import register_error_handlers
from app.api.request_metrics import install as install_request_metrics
from app.api.text_guard import register_text_guard
from app.core.container import Container

MAX_BODY_BYTES = 4 * 1024 * 1024  # 5,000 candles are about 0.5 MB


def create_app(container: Container | None = None) -> Flask:
    app = Flask(__name__)
    app.config["JSON_SORT_KEYS"] = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # larger bodies: 413, as JSON
    app.extensions["clm_container"] = container  # None: the process-wide one, built lazily
    register_error_handlers(app)
    install_request_metrics(app)  # per-endpoint durations and counts, on /metrics
    register_text_guard(app)  # a NUL in a path, query or body string: 422, not a database error

    for blueprint in _blueprints():
        app.register_blueprint(blueprint)
    return app


def _blueprints() -> list[Blueprint]:
    return [
        health.bp,
        monitoring.bp,
        dashboard.bp,
        status.bp,
        jobs.bp,
        models.bp,
        models.types_bp,
        drift.bp,
        policy.bp,
        outcomes.bp,
        rl.bp,
        shadow.bp,
        predictions.bp,
    ]
