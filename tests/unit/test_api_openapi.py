"""The OpenAPI document is valid OpenAPI 3.1, describes every operation, and schemathesis finds no 5xx."""

from __future__ import annotations

import copy
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from app.api import create_app
from app.api.docs_page import inline_code, type_text
from app.api.openapi import build_openapi
from tests.api_fixtures import TOKEN_HEADER, seed_clm_state


@pytest.fixture
def app(sqlite_container):
    seed_clm_state(sqlite_container, shadow_samples=5)
    return create_app(sqlite_container)


@pytest.fixture
def document(app) -> dict:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_is_valid_openapi_3_1(document) -> None:
    assert document["openapi"] == "3.1.0"
    OPENAPI_31_VALIDATOR.validate(document)  # the OpenAPI 3.1 meta-schema, bundled with schemathesis


def test_the_validator_rejects_a_broken_document(document) -> None:
    broken = copy.deepcopy(document)
    broken["paths"]["/api/jobs"]["get"]["responses"] = "none"
    with pytest.raises(ValueError):
        OPENAPI_31_VALIDATOR.validate(broken)


def test_every_api_route_is_described(app, document) -> None:
    undocumented = {"/", "/health", "/metrics", "/openapi.json", "/docs", "/static/<path:filename>"}
    routes = {r.rule for r in app.url_map.iter_rules()} - undocumented
    described = {path.replace("{", "<").replace("}", ">") for path in document["paths"]}
    assert routes == described
    guarded = {
        (path, method) for path, ops in document["paths"].items() for method, op in ops.items() if "security" in op
    }
    assert all(method != "get" for _, method in guarded)
    assert ("/api/jobs/retraining", "post") in guarded and ("/api/policy", "patch") in guarded
    body = document["components"]["schemas"]["RetrainingRequest"]
    assert body["properties"]["kind"]["enum"] == ["full", "partial"]


def test_docs_page_is_self_contained(app) -> None:
    page = app.test_client().get("/docs").get_data(as_text=True)
    assert "http://" not in page and "https://" not in page and "<script" not in page  # rendered here, no script
    operations = re.findall(r'<span class="method (\w+)">\w+</span><code>([^<]+)</code>', page)
    assert ("post", "/api/jobs/retraining") in operations and ("get", "/api/shadow/{model_id}") in operations
    assert len(operations) == sum(len(item) for item in build_openapi(app)["paths"].values())


def _table(page: str, op: str, title: str) -> list[list[str]]:
    block = page.split(f'data-op="{op}"', 1)[1].split('<div class="op"', 1)[0]
    table = block.split(f'data-table="{title}"', 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(<td>.*?)</tr>", table)]


def test_docs_page_shows_parameters_as_a_table_and_inline_code_as_code(app) -> None:
    page = app.test_client().get("/docs").get_data(as_text=True)
    rows = _table(page, "get /api/jobs", "parameters")
    assert rows == [
        ["<code>status</code>", "query", "one of: pending, running, completed, partial, failed, cancelled", "no", ""],
        ["<code>limit</code>", "query", "integer, 1 to 200", "no", "default <code>20</code>"],
    ]
    shadow = _table(page, "get /api/shadow/{model_id}", "parameters")
    assert shadow[0][:4] == ["<code>model_id</code>", "path", "string, non-empty", "yes"]
    assert shadow[1] == [
        "<code>min_samples</code>",
        "query",
        "integer, 1 to 10000000",
        "no",
        "default: the policy&#39;s",
    ]
    body = {r[0]: r for r in _table(page, "post /api/jobs/retraining", "request body")}
    assert body["<code>kind</code>"][2:] == ["one of: full, partial", "no", "default <code>&#34;full&#34;</code>"]
    assert body["<code>data</code>"][2] == "DatasetOverrides or null"
    # No raw JSON Schema in a parameter row, and no literal backtick left in the page's prose.
    assert '"anyOf"' not in page.split("<details>")[0] and "`" not in re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)
    assert "need <code>Authorization: Bearer &lt;token&gt;</code>" in page


def test_docs_wording_of_schemas() -> None:
    components = {"Kind": {"enum": ["a", "b"], "type": "string"}}
    assert type_text({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e12}, {}) == "number, > 0, < 1e+12"
    assert type_text({"anyOf": [{"$ref": "#/components/schemas/Kind"}, {"type": "null"}]}, components) == (
        "one of: a, b or null"
    )
    assert type_text({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {}, nullable=False) == "integer"
    assert type_text({"type": "array", "items": {"type": "string", "maxLength": 9}}, {}) == (
        "list of string, up to 9 characters"
    )
    assert inline_code("run `clm db upgrade` <now>") == "run <code>clm db upgrade</code> &lt;now&gt;"
    assert inline_code("an odd ` backtick") == "an odd ` backtick"  # unpaired: left as it is


def _has_body_or_query(op: dict) -> bool:
    return "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", []))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error(app, mode) -> None:
    """Generated requests for every operation (valid and invalid ones): never a 5xx, always JSON."""
    api = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 12
    if mode == GenerationMode.NEGATIVE:  # only operations with an input can be sent a wrong one
        raw = api.raw_schema["paths"]
        operations = [op for op in operations if _has_body_or_query(raw[op.path][op.method.lower()])]
    seen: list[tuple[str, int]] = []

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            response = case.call(headers=TOKEN_HEADER)
            seen.append((case.operation.label, response.status_code))
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
            content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"][0]
            assert content_type.startswith("application/json"), response.headers

        run()
    assert {label for label, _ in seen} == {op.label for op in operations}
    if mode == GenerationMode.NEGATIVE:
        assert any(400 <= status < 500 for _, status in seen)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_answers_conform_to_the_document(app, mode) -> None:
    """Every answer (success and error) matches the schema the document declares for its status, datetimes
    with their offset included (issue 18, defect 11: naive times broke `date-time`)."""
    api = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    if mode == GenerationMode.NEGATIVE:  # only operations with an input can be sent a wrong one
        raw = api.raw_schema["paths"]
        operations = [op for op in operations if _has_body_or_query(raw[op.path][op.method.lower()])]
    checked: set[str] = set()

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            response = case.call(headers=TOKEN_HEADER)
            case.validate_response(response, checks=[response_schema_conformance], headers=TOKEN_HEADER)
            checked.add(case.operation.label)

        run()
    assert checked == {op.label for op in operations}
