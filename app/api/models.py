"""The model registry: list and read models."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container, not_found
from app.api.openapi import operation
from app.api.queries import list_models, model_dict
from app.api.schemas import Model, ModelList, ModelsQuery
from app.db.models import ModelRegistry

bp = Blueprint("models", __name__, url_prefix="/api/models")


@operation(bp, "", summary="List registered models, newest first", tag="models", query=ModelsQuery, response=ModelList)
def get_models(query: ModelsQuery) -> ModelList:
    with container().session() as session:
        rows = list_models(session, query.model_type, query.status, query.limit)
    return ModelList(models=[Model.model_validate(r) for r in rows])


@operation(bp, "/<model_id>", summary="One model with its metrics", tag="models", response=Model)
def get_model(model_id: str) -> Model:
    with container().session() as session:
        row = session.get(ModelRegistry, model_id)
        if row is None:
            raise not_found("model", model_id)
        return Model.model_validate(model_dict(row))
