"""`/metrics` for Prometheus, the OpenAPI document and its docs page (rendered here, no script)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template

from app.api.common import container
from app.api.docs_page import docs_view
from app.api.openapi import build_openapi
from app.api.request_metrics import render_request_metrics
from app.operations.metrics import render_metrics

bp = Blueprint("monitoring", __name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/metrics")
def metrics() -> Response:
    # The CLM's state (from the database) and this API's own requests (app.api.request_metrics).
    body = render_metrics(container()) + render_request_metrics(current_app)
    return Response(body, mimetype=None, content_type=PROMETHEUS_CONTENT_TYPE)


@bp.get("/openapi.json")
def openapi_document() -> Any:
    return jsonify(build_openapi(current_app))


@bp.get("/docs")
def docs() -> str:
    return render_template("docs.html", docs=docs_view(build_openapi(current_app)))
