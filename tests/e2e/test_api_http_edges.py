"""The API under gunicorn at the edges of HTTP: every error is JSON, none a 500 (issue 18, defects 3 and 11)."""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.api_fixtures import TOKEN_HEADER
from tests.conftest import API_TOKEN
from tests.e2e.processes import api_server

pytestmark = pytest.mark.e2e


def _request(base: str, method: str, path: str, body: str | None = None, headers: dict | None = None):  # type: ignore[no-untyped-def]
    host = urlsplit(base)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=15)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.getheader("Allow"), response.read()
    finally:
        connection.close()


def _raw(base: str, data: bytes) -> bytes:
    host = urlsplit(base)
    with socket.create_connection((host.hostname, host.port), timeout=15) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_deep_bodies_long_lines_and_bad_methods_are_json_errors(pg_container, worker_env, tmp_path) -> None:
    env = worker_env | {"CLM_API_TOKEN": API_TOKEN}
    deep = '{"patch": {"a": ' + "[" * 1000 + "]" * 1000 + "}}"
    with api_server(env, tmp_path / "api.log") as base:
        for path, method in (("/api/policy", "PATCH"), ("/api/outcomes", "POST"), ("/api/jobs/retraining", "POST")):
            status, kind, _, _ = _request(base, method, path, deep)
            assert (status, kind) == (401, "application/json"), path
            status, kind, _, body = _request(base, method, path, deep, TOKEN_HEADER)
            assert (status, kind) == (400, "application/json"), (path, body[:200])
            assert json.loads(body)["details"][0]["field"] == "body"

        status, kind, allow, _ = _request(base, "DELETE", "/api/policy", headers=TOKEN_HEADER)
        assert (status, kind) == (405, "application/json") and {"GET", "PATCH"} <= set(allow.split(", "))

        status, kind, _, body = _request(base, "GET", "/api/jobs?x=" + "a" * 9000)
        assert (status, kind) == (414, "application/json")
        assert json.loads(body)["status"] == 414

        answer = _raw(base, b"GARBAGE\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b"Content-Type: application/json" in head, answer[:300]
        assert json.loads(body)["status"] == 400
    assert "RecursionError" not in (tmp_path / "api.log").read_text()
