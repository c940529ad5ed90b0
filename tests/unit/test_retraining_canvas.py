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


def _fanned_out(types: list[str], folds: int):  # type: ignore[no-untyped-def]
    return _parts(retraining_canvas("RTN-7", types, {}, folds=folds))


def test_the_fanned_out_canvas_has_a_task_per_type_and_fold_plus_each_final_fit() -> None:
    from app.forecasters import MODEL_TYPES
    from app.retraining.folds import canvas_task_count

    types = ["xgboost", "lightgbm", "nhits", "patchtst"]
    prepare, header, body = _fanned_out(types, 5)
    finals = [s for s in header if s.task == "tasks.retraining.train_model"]
    folds = [s for s in header if s.task == "tasks.retraining.train_fold"]
    assert len(finals) + len(folds) == len(header) == 4 * (5 + 1)
    assert sorted(s.args for s in finals) == sorted(("RTN-7", t) for t in types)
    assert sorted(s.args for s in folds) == sorted(("RTN-7", t, k) for t in types for k in range(1, 6))
    # Longest first: every final fit, then the folds from the last (most training rows) down.
    assert header[: len(finals)] == finals and [s.args[2] for s in folds] == sorted(
        (k for _, _, k in (s.args for s in folds)), reverse=True
    )
    # Each task on the queue its model class asks for; ids only, derived from the job.
    ids = task_ids("RTN-7", types, 5)
    for s in header:
        model_type = s.args[1]
        assert s.options["queue"] == ("gpu" if MODEL_TYPES[model_type].NEEDS_GPU else "cpu"), s
        assert s.immutable and all(isinstance(a, str | int) for a in s.args)
        key = f"train:{model_type}" if len(s.args) == 2 else f"fold:{model_type}:{s.args[2]}"
        assert (
            s.options["task_id"]
            == ids[key]
            == (f"RTN-7.train.{model_type}" if len(s.args) == 2 else f"RTN-7.fold.{model_type}.{s.args[2]}")
        )
    assert len(set(ids.values())) == len(ids) == 2 + 4 * 6 == canvas_task_count(types, 5)
    assert {s.options["queue"] for s in folds if s.args[1] in ("nhits", "patchtst")} == {"gpu"}
    assert prepare.options["queue"] == "cpu" and body.task == "tasks.retraining.finalize_job"


def _shape_problems(header, types: list[str], folds: int) -> list[str]:  # type: ignore[no-untyped-def]
    """What a fanned-out header lacks or misroutes: every (type, fold) and final fit once, on its class's queue."""
    from app.forecasters import MODEL_TYPES

    wanted = {("train", t, 0) for t in types} | {("fold", t, k) for t in types for k in range(1, folds + 1)}
    seen = {}
    for s in header:
        kind = "train" if s.task == "tasks.retraining.train_model" else "fold"
        seen[(kind, s.args[1], s.args[2] if kind == "fold" else 0)] = s.options["queue"]
    problems = [f"missing {key}" for key in sorted(wanted - seen.keys())]
    problems += [f"extra {key}" for key in sorted(seen.keys() - wanted)]
    for key, queue in sorted(seen.items()):
        expected = "gpu" if MODEL_TYPES[key[1]].NEEDS_GPU else "cpu"
        if queue != expected:
            problems.append(f"{key} on {queue}, not {expected}")
    if len(header) != len(seen):
        problems.append("duplicate tasks")
    return problems


def test_a_missing_or_misrouted_fold_fails_the_shape_check() -> None:
    types = ["xgboost", "lightgbm", "nhits", "patchtst"]
    _, header, _ = _fanned_out(types, 5)
    assert _shape_problems(header, types, 5) == []
    lost = [s for s in header if s.args[1:] != ("nhits", 3)]
    assert _shape_problems(lost, types, 5) == ["missing ('fold', 'nhits', 3)"]
    _, header, _ = _fanned_out(types, 5)
    next(s for s in header if s.args[1:] == ("patchtst", 2)).set(queue="cpu")
    assert _shape_problems(header, types, 5) == ["('fold', 'patchtst', 2) on cpu, not gpu"]


def test_fanned_out_messages_stay_small_and_negative_folds_are_refused() -> None:
    import json

    canvas = retraining_canvas("RTN-1", ["xgboost", "lightgbm", "nhits", "patchtst"], {}, folds=5)
    assert len(json.dumps(canvas)) < 30_000
    with pytest.raises(ValueError, match="folds must be 0 or more"):
        retraining_canvas("RTN-1", ["xgboost"], {}, folds=-1)


def test_a_large_dataset_is_prepared_by_piece_tasks_before_the_dataset_step() -> None:
    canvas = retraining_canvas("RTN-9", ["xgboost"], {}, folds=2, pieces=3)
    prepare, fan_out = canvas.tasks
    assert isinstance(prepare, chord) and isinstance(fan_out, chord)
    assert [s.task for s in prepare.tasks] == ["tasks.retraining.prepare_piece"] * 3
    assert [s.args for s in prepare.tasks] == [("RTN-9", k) for k in (1, 2, 3)]
    assert {s.options["queue"] for s in prepare.tasks} == {"cpu"} and all(s.immutable for s in prepare.tasks)
    assert prepare.body.task == "tasks.retraining.prepare_dataset" and prepare.body.immutable
    ids = task_ids("RTN-9", ["xgboost"], 2, 3)
    assert [s.options["task_id"] for s in prepare.tasks] == [ids[f"piece:{k}"] for k in (1, 2, 3)]
    assert len(fan_out.tasks) == 3 and len(ids) == 3 + 2 + 3
