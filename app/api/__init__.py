"""The Flask API: `create_app` (app/api/factory.py) and its blueprints, one file per resource."""

from app.api.factory import create_app

__all__ = ["create_app"]
