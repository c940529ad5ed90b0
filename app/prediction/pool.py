"""The live path's own connection pool (PostgreSQL).

The live path's own pool (PostgreSQL): no pre-ping round trip on every checkout (a
connection found dead is retried once by `PredictionService.predict` instead), and
autocommit with asynchronous commit: the write is one statement, so it is its own
transaction and needs no COMMIT round trip. Prediction logs, shadow rows and signals
are telemetry: a crash may lose the last fraction of a second of them (never half a
statement), and a request does not wait for the disk.
"""

from __future__ import annotations

from sqlalchemy import Engine

from app.core.db.session import make_engine


def live_engine(database_url: str) -> Engine:
    return make_engine(
        database_url,
        # a request holds one connection: gunicorn's 4 threads per worker, and as many again
        # for bursts (not the default 5 + 10: PostgreSQL's connection limit is shared by every
        # API and Celery worker)
        pool_size=4,
        max_overflow=4,
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
        connect_args={"options": "-c synchronous_commit=off"},
    )
