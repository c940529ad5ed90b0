"""The retraining canvas's shape, checked without running it (STYLE 9)."""

from __future__ import annotations

import pytest
from celery.canvas import _chain, chord

from workers.canvas import retraining_canvas, task_ids


def _parts(canvas):  # type: ignore[no-untyped-def]
    assert isinstance(canvas, _chain)
    prepare, fan_out = canvas.tasks
    assert isinstance(fan_out, chord)
    return prepare, list(fan_out.tasks), fan_out.body


def test_full_canvas_routes_each_model_by_its_class() -> None:
    from app.forecasters import MODEL_TYPES

    types = ["xgboost", "lightgbm", "nhits", "patchtst"]
    prepare, header, body = _parts(retraining_canvas("RTN-20260101-001", types, {"symbols": ["BTC/USDT"]}))

    assert prepare.task == "tasks.retraining.prepare_dataset"
    assert prepare.args == ("RTN-20260101-001",) and prepare.immutable
    assert prepare.options["queue"] == "cpu"

    assert [s.task for s in header] == ["tasks.retraining.train_model"] * 4
    assert [s.args for s in header] == [("RTN-20260101-001", t) for t in types]
    queues = {s.args[1]: s.options["queue"] for s in header}
    assert queues == {t: ("gpu" if MODEL_TYPES[t].NEEDS_GPU else "cpu") for t in types}
    assert queues == {"xgboost": "cpu", "lightgbm": "cpu", "nhits": "gpu", "patchtst": "gpu"}
    # Immutable: the dataset id is re-read from the job row, not passed along.
    assert all(s.immutable for s in header)

    assert body.task == "tasks.retraining.finalize_job"
    assert body.args == ("RTN-20260101-001",) and not body.immutable
    assert body.options["queue"] == "default"
    # A failed training is a FAILURE task, which skips the callback: the errback closes the job instead.
    (errback,) = body.options["link_error"]
    assert errback["task"] == "tasks.retraining.finalize_after_failure" and errback["immutable"]
    assert tuple(errback["args"]) == ("RTN-20260101-001",) and errback["options"]["queue"] == "default"


def test_task_ids_derive_from_the_job_so_cancel_can_revoke_them() -> None:
    prepare, header, body = _parts(
        retraining_canvas("RTN-1", ["naive", "xgboost"], {}, {"naive": False, "xgboost": True})
    )
    ids = task_ids("RTN-1", ["naive", "xgboost"])
    assert prepare.options["task_id"] == ids["prepare"]
    assert [s.options["task_id"] for s in header] == [ids["train:naive"], ids["train:xgboost"]]
    assert body.options["task_id"] == ids["finalize"]
    assert [s.options["queue"] for s in header] == ["cpu", "gpu"]
    assert len(set(ids.values())) == 4


def test_messages_are_small_json() -> None:
    import json

    canvas = retraining_canvas("RTN-1", ["xgboost", "nhits"], {"symbols": ["BTC/USDT"] * 100})
    assert len(json.dumps(canvas)) < 4000


def test_empty_or_unknown_model_types_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one model type"):
        retraining_canvas("RTN-1", [], {})
    with pytest.raises(ValueError, match="unknown model type 'gbm'"):
        retraining_canvas("RTN-1", ["gbm"], {})
