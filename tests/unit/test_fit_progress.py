"""Progress inside a fit: each library's own callback reports the trees or steps built, and a training
records them (throttled) in its job entry and hands them to Flower's hook.

The forecasters are fitted on the contract test's small real data (tests/data/ohlcv).
"""

from __future__ import annotations

import pytest

from app.forecasters import MODEL_TYPES, ForecastSpec
from app.forecasters.base import no_fit_progress
from app.retraining import RetrainingOrchestrator, folds, progress, steps
from tests.unit.test_training_contract import HORIZON, Parts, contract_parts
from tests.unit.training_helpers import BTC_FILES_SPEC


@pytest.fixture(scope="module")
def parts() -> Parts:
    return contract_parts()


def check_reports(calls: list[tuple[str, int, int]], unit: str, budget: int, built: int) -> None:
    """One call after every tree or step (1, 2, ... of the budget), then the end: built of built."""
    assert calls and all(u == unit for u, _, _ in calls), calls
    *during, last = calls
    assert [d for _, d, _ in during] == list(range(1, len(during) + 1)), during
    assert all(total == budget for _, _, total in during), during
    assert last == (unit, built, built), (last, built)
    assert during[-1][1] == built  # the last tree or step built is the one the fit ended with


@pytest.mark.parametrize("model_type", ["xgboost", "lightgbm"])
def test_a_tree_fit_reports_each_tree_and_ends_at_the_models_tree_count(model_type: str, parts: Parts) -> None:
    train, valid, _, features = parts
    budget = 200
    # A high learning rate and a short patience: early stopping ends the fit well before the budget.
    params = {"n_estimators": budget, "learning_rate": 0.5, "early_stopping_rounds": 3}
    model = MODEL_TYPES[model_type](ForecastSpec(features, HORIZON, params, seed=7, threads=1))
    calls: list[tuple[str, int, int]] = []
    model.fit(train, valid, lambda unit, done, total: calls.append((unit, done, total)))
    # The trees built, from the library's own record: an early stop comes `early_stopping_rounds` after the best.
    best = model.booster.best_iteration + (1 if model_type == "xgboost" else 0)  # xgboost's is 0-based
    built = best + params["early_stopping_rounds"]
    assert built < budget, "early stopping should have ended this fit"
    if model_type == "xgboost":  # its booster keeps every tree built (prediction uses those up to the best)
        assert len(model.booster.get_dump()) == model.booster.num_boosted_rounds() == built
    else:  # LightGBM's returned booster keeps the trees up to the best one
        assert model.booster.num_trees() == best
    check_reports(calls, "trees", budget, built)
    assert model.fit_progress is no_fit_progress  # the model keeps no reference to the caller's recorder


def test_a_neural_fit_reports_its_training_steps(parts: Parts, tmp_path, monkeypatch) -> None:
    """Both neuralforecast types (one test: importing neuralforecast takes seconds) through a Lightning callback."""
    train, valid, _, features = parts
    monkeypatch.chdir(tmp_path)
    for model_type in ("nhits", "patchtst"):
        params = MODEL_TYPES[model_type].TINY_PARAMS | {"max_steps": 4}
        model = MODEL_TYPES[model_type](ForecastSpec(features, HORIZON, params, seed=7, threads=1))
        calls: list[tuple[str, int, int]] = []
        model.fit(train, valid, lambda unit, done, total, calls=calls: calls.append((unit, done, total)))
        steps_taken = len(model.nf.models[0].train_trajectories)  # neuralforecast's own record, one per step
        check_reports(calls, "steps", 4, steps_taken)
        assert steps_taken == 4
        # The callback was taken out again: the model's trainer (and what it saves) does not hold it.
        assert not [c for c in model.nf.models[0].trainer_kwargs.get("callbacks", []) if hasattr(c, "report")]
        assert len(model.predict(valid.tail(20), history=train)) == 20


def test_a_training_records_its_trees_in_the_job_entry_and_for_flower(sqlite_container, monkeypatch) -> None:
    """The job's entry and Flower's hook see each fit's trees (every one here: no throttle), the job's
    percentage only grows, and each fit ends at its tree count; with the throttle, far fewer writes."""
    container = sqlite_container
    monkeypatch.setattr(container.settings, "train_threads", 1)  # OpenMP threads on a busy machine only spin
    container.policy_store.update(
        {
            "training": {"cv_folds": 2, "fold_tasks": False, "xgboost": {"n_estimators": 10}},
            "clm_config": {"baseline_gate": {"enabled": False}},
        },
        author="test",
    )
    orchestrator = RetrainingOrchestrator(container)  # inline dispatcher: the steps run here, by hand
    seen: list[tuple[dict, float | None, dict]] = []

    def on_progress(meta: dict) -> None:  # called after the job row is written: what the API shows now
        job = orchestrator.get_job(meta["job_id"])
        seen.append((meta, job.progress_pct, job.models["xgboost"].get("progress") or {}))

    monkeypatch.setattr(progress, "PROGRESS_WRITE_S", 0.0)
    job_id = orchestrator.start_partial(["xgboost"], reason="test", spec=BTC_FILES_SPEC)
    steps.prepare_dataset(container, job_id)
    summary = steps.train_one_model(container, job_id, "xgboost", on_progress=on_progress)
    assert summary["status"] == "trained", summary

    stages = [meta["stage"] for meta, _, _ in seen if "in_fit" not in meta]
    assert stages == ["fit", "cv fold 1 of 2", "cv fold 2 of 2", "storing"]
    assert all(meta["model_type"] == "xgboost" for meta, _, _ in seen)
    for meta, _, entry in seen:  # the job entry holds what Flower was told, the trees included
        assert entry == {k: v for k, v in meta.items() if k not in ("job_id", "model_type")}
    percents = [pct for _, pct, _ in seen]
    assert percents == sorted(percents) and percents[-1] > percents[0], percents
    for stage in ("fit", "cv fold 1 of 2", "cv fold 2 of 2"):
        inner = [meta["in_fit"] for meta, _, _ in seen if meta.get("in_fit") and meta["stage"] == stage]
        trees = [i["done"] for i in inner]
        assert trees[:3] == [1, 2, 3] and trees == sorted(trees), (stage, trees)
        assert inner[-1]["done"] == inner[-1]["total"] <= 10 and inner[-2]["total"] == 10, (stage, inner[-2:])

    # The default throttle: at most one in-fit write a second, besides each fit's end.
    monkeypatch.setattr(progress, "PROGRESS_WRITE_S", 1.0)
    seen.clear()
    job_id = orchestrator.start_partial(["xgboost"], reason="test", spec=BTC_FILES_SPEC)
    steps.prepare_dataset(container, job_id)
    summary = steps.train_one_model(container, job_id, "xgboost", on_progress=on_progress)
    assert summary["status"] == "trained", summary
    in_fit = [meta for meta, _, _ in seen if "in_fit" in meta]
    ends = [m for m in in_fit if m["in_fit"]["done"] == m["in_fit"]["total"]]
    assert len(ends) == 3  # each fit's end is always recorded
    assert len(in_fit) - len(ends) <= seen[-1][0]["seconds"] / 1.0 + 1, in_fit


def test_a_fold_task_records_its_trees_in_its_fold_entry_and_the_job_percentage(sqlite_container, monkeypatch) -> None:
    """A fanned-out job's fold task: its trees go to the fold's entry and to Flower's hook, and they move
    the job's percentage inside the fold's share (dataset done: 20 %; the fold done: 40 %)."""
    container = sqlite_container
    monkeypatch.setattr(container.settings, "train_threads", 1)
    container.policy_store.update({"training": {"cv_folds": 2, "xgboost": {"n_estimators": 10}}}, author="test")
    orchestrator = RetrainingOrchestrator(container)
    job_id = orchestrator.start_partial(["xgboost"], reason="test", spec=BTC_FILES_SPEC)  # inline: nothing runs
    assert orchestrator.get_job(job_id).metadata["canvas_tasks"] == 5  # dataset, fit, 2 folds, callback
    steps.prepare_dataset(container, job_id)
    seen: list[tuple[dict, float | None, dict]] = []

    def on_progress(meta: dict) -> None:
        job = orchestrator.get_job(job_id)
        seen.append((meta, job.progress_pct, job.models["xgboost"]["folds"]["2"]))

    monkeypatch.setattr(progress, "PROGRESS_WRITE_S", 0.0)
    assert folds.train_fold(container, job_id, "xgboost", 2, on_progress=on_progress)["status"] == "scored"
    assert {(m["model_type"], m["fold"], m["stage"]) for m, _, _ in seen} == {("xgboost", 2, "cv fold 2 of 2")}
    for meta, _, entry in seen:
        assert entry["status"] == "training" and entry["progress"].get("in_fit") == meta.get("in_fit"), (meta, entry)
    trees = [m["in_fit"]["done"] for m, _, _ in seen if "in_fit" in m]
    assert trees[:3] == [1, 2, 3] and trees == sorted(trees), trees
    percents = [pct for _, pct, _ in seen]
    assert percents == sorted(percents) and 20.0 <= percents[0] < percents[-1] <= 40.0, percents
    job = orchestrator.get_job(job_id)
    assert job.progress_pct == 40.0
    # After the fold, its entry keeps how its fit ended: every tree built, or fewer after an early stop.
    last = job.models["xgboost"]["folds"]["2"]["progress"]["in_fit"]
    assert last["unit"] == "trees" and last["done"] == last["total"] == trees[-1] <= 10
