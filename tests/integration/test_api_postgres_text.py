"""The API on PostgreSQL with text PostgreSQL cannot store: a NUL in a path, query or body is a 422, never a 500.

Before the guard (app/api/text_guard.py), GET /api/shadow/a%00b answered 500 (`ValueError: A string
literal cannot contain NUL (0x00) characters.` from psycopg2); on SQLite it was a 404, so the
schemathesis run on the embedded stack could not see it.
"""

from __future__ import annotations

import pytest

from app.api import create_app
from app.api.text_guard import nul_fields
from tests.api_fixtures import TOKEN_HEADER, seed_clm_state

pytestmark = pytest.mark.integration


def _fields(response) -> list[str]:
    return [d["field"] for d in response.get_json()["details"]]


def test_nul_fields_names_every_string_that_holds_one() -> None:
    body = {"a": "ok", "b\x00": 1, "c": ["x", {"d": "y\x00z"}], "e": None}
    assert list(nul_fields(body, "body")) == ["body.b\x00", "body.c.1.d"]
    assert list(nul_fields("plain", "path.id")) == []


def test_a_nul_in_a_shadow_model_id_is_422_not_500(pg_container) -> None:
    seeded = seed_clm_state(pg_container, shadow_samples=5)
    client = create_app(pg_container).test_client()
    ok = client.get(f"/api/shadow/{seeded.shadow_id}")
    assert ok.status_code == 200 and ok.get_json()["total_samples"] == 5
    refused = client.get("/api/shadow/xgboost_v3%00")
    assert refused.status_code == 422, refused.get_json()
    assert _fields(refused) == ["path.model_id"]
    assert client.get("/api/shadow/no_such_model").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/api/models/a%00b", None, "path.model_id"),
        ("GET", "/api/jobs/RTN%00", None, "path.job_id"),
        ("GET", "/api/models?model_type=x%00", None, "query.model_type"),
        ("GET", "/api/shadow/xgboost_v3?min_samples=5%00", None, "query.min_samples"),
        ("PATCH", "/api/policy", {"patch": {}, "comment": "a\x00b"}, "body.comment"),
        ("POST", "/api/models/xgboost_v2/retire", {"reason": "old\x00"}, "body.reason"),
    ],
)
def test_a_nul_anywhere_in_a_request_is_a_422_naming_the_field(pg_container, method, path, body, field) -> None:
    seed_clm_state(pg_container, shadow_samples=0)
    client = create_app(pg_container).test_client()
    response = client.open(path, method=method, json=body, headers=TOKEN_HEADER)
    assert response.status_code == 422, response.get_json()
    assert _fields(response) == [field]
    assert client.get("/api/models/xgboost_v2").get_json()["status"] == "ACTIVE"  # nothing changed
