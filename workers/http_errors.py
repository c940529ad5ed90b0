"""gunicorn's own error answers as JSON, like every other error of the API.

gunicorn refuses some requests before the application sees them (a request line over
`limit_request_line`: 414; a malformed request line or header: 400; too many headers: 431)
and answers them with an HTML page. `gunicorn.conf.py` puts `write_json_error` in place of
`gunicorn.util.write_error`, which every worker calls for those answers.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util


def json_error_response(status: int, reason: str, message: str) -> bytes:
    """The raw HTTP/1.1 response: the API's error body (`{"error", "status"}`), connection closed."""
    body = json.dumps({"error": f"{reason}: {message}"[:1000] if message else reason, "status": status}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, json_error_response(status_int, reason, mesg))


def install() -> None:
    util.write_error = write_json_error
