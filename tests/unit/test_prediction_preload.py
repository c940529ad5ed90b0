"""The live models are loaded before the first request: at process start and when they change."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace

from sqlalchemy import select

from app.core.db.models import PredictionLog
from app.prediction import PredictionService, model_cache
from app.prediction.preload import LOADED, Preloader, preload_live_models, start_preload
from tests.api_fixtures import _model, synthetic_candles, train_naive


def test_after_the_preload_the_first_prediction_loads_nothing(sqlite_container) -> None:
    model_id = train_naive(sqlite_container)
    with sqlite_container.session() as s:  # a second live type whose artifact is not a model: it fails alone
        s.add(_model(sqlite_container, "xgboost", 1, "ACTIVE", 1))
    cache = model_cache(sqlite_container)
    failed: dict = {}
    outcome = preload_live_models(sqlite_container, failed)
    assert outcome["naive"] == LOADED and outcome["xgboost"].startswith("failed:"), outcome
    loads = cache.loads
    assert loads >= 1
    prediction = PredictionService(sqlite_container, "naive").predict("BTC/USDT", synthetic_candles())
    assert prediction.model_id == model_id
    assert cache.loads == loads  # served from the cache: no model was loaded by the request
    assert prediction.model_load_ms < 50  # a lookup, not a load
    with sqlite_container.session() as s:
        logged = s.scalar(select(PredictionLog.latency_ms).where(PredictionLog.id == prediction.prediction_id))
    assert logged == prediction.latency_ms
    # Looking again loads nothing new (what the watch does every few seconds), nor retries the broken one.
    again = preload_live_models(sqlite_container, failed)
    assert again == outcome and cache.loads == loads


def test_a_cold_prediction_reports_its_load_apart_from_its_latency(sqlite_container) -> None:
    train_naive(sqlite_container)
    cache = model_cache(sqlite_container)
    prediction = PredictionService(sqlite_container, "naive").predict("BTC/USDT", synthetic_candles())
    assert cache.loads == 1 and prediction.model_load_ms > 0  # loaded inside the request: reported as a load
    assert "model_load_ms" not in prediction.to_dict()  # not in the signal's payload
    again = PredictionService(sqlite_container, "naive").predict("BTC/USDT", synthetic_candles(seed=12))
    assert cache.loads == 1 and again.model_load_ms < prediction.model_load_ms


def test_the_preload_thread_starts_at_once_and_loads_a_model_that_turns_live(sqlite_container) -> None:
    cache = model_cache(sqlite_container)
    preloader = Preloader(sqlite_container, watch_seconds=0.2)
    preloader.thread.start()
    try:
        assert preloader.first_done.wait(30) and preloader.outcome == {}  # nothing live yet
        train_naive(sqlite_container)  # a new ACTIVE model (a promotion delivered elsewhere looks the same)
        for _ in range(150):
            if preloader.outcome.get("naive") == LOADED:
                break
            preloader.first_done.clear()
            preloader.first_done.wait(0.2)
        assert preloader.outcome.get("naive") == LOADED and cache.loads == 1
    finally:
        preloader.stop()
        preloader.thread.join(10)
    assert not preloader.thread.is_alive()


def test_preload_can_be_turned_off_and_otherwise_runs_in_the_background(sqlite_container) -> None:
    train_naive(sqlite_container)
    off = replace(sqlite_container, settings=sqlite_container.settings.model_copy(update={"model_preload": False}))
    assert start_preload(off) is None
    once = replace(sqlite_container, settings=sqlite_container.settings.model_copy(update={"model_watch_seconds": 0}))
    preloader = start_preload(once)
    assert preloader is not None and preloader.thread.daemon  # never holds the process up at exit
    preloader.thread.join(60)  # watch 0: one preload, then the thread ends
    assert not preloader.thread.is_alive() and preloader.outcome == {"naive": LOADED}


def test_the_preload_of_tree_models_does_not_import_neuralforecast(sqlite_container, tmp_path) -> None:
    train_naive(sqlite_container)
    script = textwrap.dedent(
        f"""
        import json, sys
        from app.bootstrap import bootstrap
        from app.core.settings import Settings
        from app.prediction.preload import preload_live_models
        settings = Settings(DATABASE_URL={sqlite_container.settings.database_url!r},
                            ARTIFACT_ROOT={sqlite_container.settings.artifact_root!r})
        outcome = preload_live_models(bootstrap(settings))
        print(json.dumps({{"outcome": outcome, "neural": "neuralforecast" in sys.modules}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"outcome": {"naive": LOADED}, "neural": False}
