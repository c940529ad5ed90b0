"""The simulated trading engine's only way into the system: the client library over the API.

The main run drives the Flask application in its own process through httpx's WSGI transport,
so every request passes the API's validation and bearer-token check with no server to start.
`app/` may not import the API (it is an edge), so the entry point that starts the run
(`workers/cli.py`, through `workers/wsgi.py`) installs the application factory here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from quantum_trader_client import CLMClient

if TYPE_CHECKING:
    from app.core.container import Container

WsgiAppFactory = Callable[["Container"], Any]
_wsgi_app_factory: WsgiAppFactory | None = None


def install_wsgi_app_factory(factory: WsgiAppFactory) -> None:
    global _wsgi_app_factory
    _wsgi_app_factory = factory


def in_process_client(container: Container) -> CLMClient:
    """A client of the API built on `container`, served in this process."""
    if _wsgi_app_factory is None:
        raise RuntimeError("no API installed: start the main run with `python -m workers.cli run` (it installs it)")
    token = container.settings.api_token
    if token is None:
        raise RuntimeError("the main run's container has no CLM_API_TOKEN: the engine's calls would be refused")
    transport = httpx.WSGITransport(app=_wsgi_app_factory(container))
    # In-process nothing is lost on the way: a failure is a fault to see, not to retry.
    return CLMClient("http://clm.in-process", token.get_secret_value(), transport=transport, retries=0, timeout_s=600)
