"""The `/docs` page's view of the OpenAPI document: readable parameter tables, inline code as code.

Rendered on the server from `build_openapi` (the same document as `/openapi.json`), so the page
needs no script and its wording is tested here: a parameter is a row (name, where, type,
required, description) with its type in words ("integer, 1 to 500, default 20", "one of: low,
medium, high"), not its JSON Schema; `backticks` in descriptions become `<code>`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup, escape

_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def inline_code(text: str | None) -> Markup:
    """`text` as HTML: escaped, each `...` span as <code>...</code>."""
    escaped = str(escape(text or ""))
    return Markup(_INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escaped))


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return components.get(name, {}), name
    return schema, None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def type_text(schema: dict[str, Any], components: dict[str, Any], nullable: bool = True) -> str:
    """A JSON Schema in words: "integer, 1 to 500", "one of: a, b", "list of string", "string or null".
    `nullable=False` leaves out "or null" (a query parameter is absent, never null)."""
    schema, ref_name = _resolve(schema, components)
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        kinds = [v for v in variants if v.get("type") != "null"]
        either = " or ".join(type_text(v, components) for v in kinds) or "null"
        return either + (" or null" if nullable and len(kinds) < len(variants) else "")
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return f"exactly {schema['const']}"
    kind = schema.get("type")
    if kind == "array":
        return "list of " + type_text(schema.get("items", {}), components)
    if kind == "object" or ref_name:
        return ref_name or "object"
    words = [str(schema.get("format") or kind or "any")]
    words += _bounds(schema)
    if "pattern" in schema:
        words.append(f"matching {schema['pattern']}")
    return ", ".join(words)


def _bounds(schema: dict[str, Any]) -> list[str]:
    words = []
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        words.append(f"{_number(low)} to {_number(high)}")
    else:
        for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
            if schema.get(key) is not None:
                words.append(f"{sign} {_number(schema[key])}")
    shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
    if longest is not None:
        words.append(f"up to {longest} characters" if shortest == 0 else f"{shortest} to {longest} characters")
    elif shortest:
        words.append("non-empty" if shortest == 1 else f"at least {shortest} characters")
    return words


def _row(
    name: str, where: str, required: bool, schema: dict[str, Any], components: dict[str, Any], description: str | None
) -> dict[str, Any]:
    notes = description or schema.get("description") or ""
    if "default" in schema and schema["default"] is not None:
        default = json.dumps(schema["default"])
        notes = f"{notes} (default `{default}`)" if notes else f"default `{default}`"
    return {
        "name": name,
        "in": where,
        "type": type_text(schema, components, nullable=where == "body"),
        "required": required,
        "description": inline_code(notes),
    }


def operation_view(path: str, method: str, op: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """One operation of the page: its head, description, parameter rows and body field rows."""
    parameters = [
        _row(p["name"], p["in"], bool(p.get("required")), p.get("schema", {}), components, p.get("description"))
        for p in op.get("parameters", [])
    ]
    body_fields: list[dict[str, Any]] = []
    body_schema: dict[str, Any] | None = None
    if "requestBody" in op:
        body_schema, _ = _resolve(op["requestBody"]["content"]["application/json"]["schema"], components)
        required = set(body_schema.get("required", []))
        body_fields = [
            _row(name, "body", name in required, prop, components, None)
            for name, prop in body_schema.get("properties", {}).items()
        ]
    responses = []
    for code, response in op.get("responses", {}).items():
        content = (response.get("content") or {}).get("application/json")
        shown = _resolve(content["schema"], components)[0] if content and code < "300" else None
        responses.append(
            {
                "code": code,
                "description": inline_code(response.get("description")),
                "schema": json.dumps(shown, indent=2) if shown else None,
            }
        )
    return {
        "method": method,
        "path": path,
        "summary": inline_code(op.get("summary")),
        "guarded": "security" in op,
        "description": inline_code(op.get("description")),
        "parameters": parameters,
        "body_fields": body_fields,
        "body_schema": json.dumps(body_schema, indent=2) if body_schema else None,
        "responses": responses,
    }


def docs_view(document: dict[str, Any]) -> dict[str, Any]:
    """The whole page: the API's description and every operation, in the document's order."""
    components = document.get("components", {}).get("schemas", {})
    operations = [
        operation_view(path, method, op, components)
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]
    return {
        "title": document["info"]["title"],
        "description": inline_code(document["info"].get("description")),
        "operations": operations,
    }
