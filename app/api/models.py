"""The model registry: list and read models; retire, promote, roll back."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container, not_found
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import Model, ModelList, ModelsQuery, PromoteRequest, RetireRequest, RollbackRequest
from app.forecasters import MODEL_TYPES
from app.model_registry import ModelNotFoundError, RegistryError
from app.model_registry import ModelRegistry as RegistryService
from app.operations.read_models import list_models

bp = Blueprint("models", __name__, url_prefix="/api/models")
types_bp = Blueprint("model_types", __name__, url_prefix="/api/model-types")


@operation(bp, "", summary="List registered models, newest first", tag="models", query=ModelsQuery, response=ModelList)
def get_models(query: ModelsQuery) -> ModelList:
    with container().session() as session:
        rows = list_models(session, query.model_type, query.status, query.limit)
    return ModelList(models=[Model.model_validate(r) for r in rows])


@operation(bp, "/<model_id>", summary="One model with its metrics", tag="models", response=Model)
def get_model(model_id: str) -> Model:
    try:
        return Model.of(RegistryService(container()).get_model(model_id))
    except ModelNotFoundError:
        raise not_found("model", model_id) from None


def _known_type(model_type: str) -> str:
    if model_type not in MODEL_TYPES:
        raise ApiError(404, f"model type {model_type!r} not found; known: {sorted(MODEL_TYPES)}")
    return model_type


@operation(
    bp, "/<model_id>/retire", "POST", summary="Retire a model", tag="models",
    body=RetireRequest, response=Model, auth=True, conflict=True,
)  # fmt: skip
def post_retire(model_id: str, body: RetireRequest) -> Model:
    try:
        record = RegistryService(container()).retire_model(model_id, body.reason)
    except ModelNotFoundError:
        raise not_found("model", model_id) from None
    except RegistryError as exc:
        raise ApiError(409, str(exc)) from None
    return Model.of(record)


@operation(
    types_bp, "/<model_type>/promote", "POST", summary="Promote the SHADOW model of a type to ACTIVE", tag="models",
    body=PromoteRequest, response=Model, auth=True, conflict=True,
)  # fmt: skip
def post_promote(model_type: str, body: PromoteRequest) -> Model:
    try:
        record = RegistryService(container()).promote_shadow_to_active(_known_type(model_type), body.reason)
    except RegistryError as exc:  # no shadow model
        raise ApiError(409, str(exc)) from None
    return Model.of(record)


@operation(
    types_bp, "/<model_type>/rollback", "POST", summary="Make an earlier version of a type ACTIVE again",
    tag="models", body=RollbackRequest, response=Model, auth=True, conflict=True,
)  # fmt: skip
def post_rollback(model_type: str, body: RollbackRequest) -> Model:
    try:
        record = RegistryService(container()).rollback(_known_type(model_type), body.version)
    except ModelNotFoundError:
        raise not_found(f"{model_type} version", body.version) from None
    except RegistryError as exc:  # artifact gone
        raise ApiError(409, str(exc)) from None
    return Model.of(record)
