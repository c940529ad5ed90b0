"""Operations declared once, with pydantic models: validated at run time, described in OpenAPI 3.1.

`@operation(bp, "/jobs/<job_id>", ...)` registers a Flask view that checks the bearer
token (when `auth`), validates the query string and the JSON body against pydantic models
(422 naming each field and the reason), and serialises the returned model. The OpenAPI
document is built from the app's own URL map and those models, so it cannot drift from
what the code accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal, get_args, get_origin

from flask import Blueprint, Flask, jsonify, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from app.api.auth import require_token
from app.api.errors import ApiError, validation_details
from app.api.schemas import ErrorBody

REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass
class OperationSpec:
    method: str
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: bool = False
    not_found: bool = False
    conflict: bool = False
    description: str = ""
    path_params: list[str] = field(default_factory=list)


def _query_values(model: type[BaseModel]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in request.args:
        info = model.model_fields.get(key)
        is_list = info is not None and (get_origin(info.annotation) is list or list in get_args(info.annotation))
        values[key] = request.args.getlist(key) if is_list else request.args.get(key)
    return values


def _parse(model: type[BaseModel], data: Any, location: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [{**d, "field": f"{location}.{d['field']}"} for d in validation_details(exc)]
        raise ApiError(422, f"invalid {location}", details) from None


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid body", [{"field": "body", "reason": "a JSON object is required"}])
    return body


def operation(
    bp: Blueprint,
    rule: str,
    method: str = "GET",
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: bool = False,
    not_found: bool = False,
    conflict: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `view` on `bp`; it receives path args plus `query=` / `body=` models."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        spec = OperationSpec(
            method=method.upper(),
            summary=summary,
            tag=tag,
            body=body,
            query=query,
            response=response,
            status=status,
            auth=auth,
            not_found=not_found or "<" in rule,
            conflict=conflict,
            description=(view.__doc__ or "").strip(),
            path_params=re.findall(r"<(?:\w+:)?(\w+)>", rule),
        )

        @wraps(view)
        def wrapper(**path_args: Any) -> Any:
            kwargs = dict(path_args)
            if query is not None:
                kwargs["query"] = _parse(query, _query_values(query), "query")
            if body is not None:
                kwargs["body"] = _parse(body, _json_body(), "body")
            result = view(**kwargs)
            if isinstance(result, BaseModel):
                return jsonify(result.model_dump(mode="json")), status
            return result

        guarded = require_token(wrapper) if auth else wrapper
        guarded.__openapi__ = spec  # type: ignore[attr-defined]
        bp.add_url_rule(rule, endpoint=view.__name__, view_func=guarded, methods=[spec.method])
        return guarded

    return decorator


# --------------------------------------------------------------------------- the document


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model="ErrorBody")}}},
    }


def build_openapi(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every `@operation` registered on `app`."""
    operations: list[tuple[str, OperationSpec]] = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions.get(rule.endpoint), "__openapi__", None)
        if spec is not None:
            operations.append((str(rule.rule), spec))
    models: set[type[BaseModel]] = {ErrorBody}
    for _, spec in operations:
        models.update(m for m in (spec.body, spec.query, spec.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (m, "validation") for m in ordered
    ] + [(m, "serialization") for m in ordered]
    refs, defs = models_json_schema(keyed, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for path_rule, spec in sorted(operations, key=lambda item: item[0]):
        op: dict[str, Any] = {
            "operationId": f"{spec.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path_rule).strip('_') or 'root'}",
            "summary": spec.summary,
            "tags": [spec.tag],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                for name in spec.path_params
            ],
            "responses": {},
        }
        if spec.description:
            op["description"] = spec.description
        if spec.query is not None:
            query_schema = spec.query.model_json_schema(ref_template=REF_TEMPLATE)
            schemas.update(query_schema.pop("$defs", {}))
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
                if prop.get("description"):
                    parameter["description"] = prop["description"]
                op["parameters"].append(parameter)
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
            }
        ok: dict[str, Any] = {"description": "success"}
        if spec.response is not None:
            ok["content"] = {"application/json": {"schema": refs[(spec.response, "serialization")]}}
        op["responses"][str(spec.status)] = ok
        if spec.auth:
            op["security"] = [{"bearerAuth": []}]
            op["responses"]["401"] = _error_response("missing bearer token")
            op["responses"]["403"] = _error_response("wrong bearer token")
        if spec.not_found:
            op["responses"]["404"] = _error_response("unknown id")
        if spec.conflict:
            op["responses"]["409"] = _error_response("the state does not allow it")
        if spec.query is not None or spec.body is not None:
            op["responses"]["422"] = _error_response("invalid input: each field and the reason")
        if not op["parameters"]:
            del op["parameters"]
        paths.setdefault(_openapi_path(path_rule), {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Quantum Trader CLM API",
            "version": "1.0.0",
            "description": "Trigger and follow retraining, manage models, drift, policy, RL agents; "
            "serve predictions and take trade outcomes. State-changing calls need `Authorization: Bearer <token>`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
