"""Flask application factory (`flask --app app.api run`, `gunicorn 'app.api:create_app()'`)."""

from __future__ import annotations

from flask import Flask

from app.api.errors import register_error_handlers
from app.bootstrap import Container, get_container


def create_app(container: Container | None = None) -> Flask:
    app = Flask(__name__)
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["clm_container"] = container  # None: the process-wide one, built lazily
    register_error_handlers(app)

    from app.api.health import bp as health_bp

    app.register_blueprint(health_bp)
    return app


def container_of(app: Flask) -> Container:
    container = app.extensions.get("clm_container")
    if container is None:
        container = get_container()
        app.extensions["clm_container"] = container
    return container
