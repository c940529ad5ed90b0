"""Benchmark: the live path on PostgreSQL with ACTIVE + SHADOW XGBoost models (300 trees, depth 6).

- prediction latency in-process (`PredictionService.predict(symbol)`: the snapshot query,
  both models, prediction logs, shadow row and event in one transaction) and over HTTP (the
  real API, `POST /api/predictions` with its bearer token and request validation, served by
  gunicorn as the Procfile runs it (2 gthread workers, keep-alive), one keep-alive client
  pacing requests at `--rate` per second), and in the same server run both RL decisions
  (`http_meta_decision_*`, `http_sizing_decision_*`: the agent's choice, the clamp, the
  decision recorded). Features and model outputs change once per
  candle and are cached per candle, so these are the steady-state figures; `inproc_cold_*`
  is the same call with the cache emptied before each request (a new candle every time:
  candle read, features, both models);
- shadow rows recorded per second, batched (COPY) and one per call;
- time to evaluate a shadow test of 1,000,000 closed pairs under a policy whose only look is the
  millionth pair, the last 1000 closed since the previous evaluation: incremental
  (`evaluate_1m_seconds`: the kept running statistics, a count, the 1000 new pairs), against
  reading and comparing every pair (`baseline_evaluate_1m_full_read_seconds`, the same
  decision), and with no kept state (`evaluate_1m_recompute_seconds`); under the default policy
  (`evaluate_1m_default_policy_seconds`: the count, then the first 8000 pairs the last look
  decides on); the report of `GET /api/shadow/<id>` (`report_default_policy_seconds`: that
  evaluation and both models' staggered books on its pairs by `scoring.py`, 500 bootstrap
  draws; `report_1m_seconds`: the books of all 1M pairs), and the book's bootstrap from block
  sums against materialising every resampled series (`baseline_book_bootstrap_*`, the old way);
- the model supervisor's health of a model with 1,000,000 logs in its window
  (`health_1m_seconds`, aggregated by PostgreSQL; baseline: the same rows read into a frame
  and computed in numpy, as the embedded mode does), and prediction drift over those logs
  (`prediction_drift_1m_seconds`, on an evenly spaced sample; baseline: reading every log of
  both windows, before any statistics).

Baselines in the same run: one XGBoost row predict, one feature computation, the candle
read, and a batched insert through SQLAlchemy executemany (psycopg2's batch helpers).

Usage: python bench/live.py [--rate 200] [--seconds 10] [--batch-rows 200000] [--eval-rows 1000000]
       python bench/live.py --only evaluate   (the shadow evaluation alone)
Needs PostgreSQL at CLM_TEST_PG_ADMIN_URL (default postgres@127.0.0.1); creates and drops its
own database. Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# Serving runs one OpenMP thread per request: requests, not rows, are what runs in parallel, and
# XGBoost's per-call DMatrix otherwise spins up every core for a single row (50 ms on a busy
# machine instead of ~1 ms). Set before any model library loads; the gunicorn child inherits it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

SYMBOL = "BTC/USDT"


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    values = np.asarray(samples_ms)
    return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99))}


def _container(database_url: str, artifact_root: str):  # type: ignore[no-untyped-def]
    from app.bootstrap import bootstrap
    from app.core.dispatch import InlineDispatcher
    from app.core.settings import Mode, Settings

    settings = Settings(CLM_MODE=Mode.DISTRIBUTED, DATABASE_URL=database_url, ARTIFACT_ROOT=artifact_root)
    return bootstrap(settings, InlineDispatcher())


def _setup(container) -> None:  # type: ignore[no-untyped-def]
    from app.core.clock import utcnow
    from app.data_pipeline import synthetic_market
    from app.data_pipeline.candle_store import CandleStore
    from tests.live_models import register_model

    register_model(container, "xgboost", n_estimators=300, seed=1)  # ACTIVE
    register_model(container, "xgboost", n_estimators=300, seed=2)  # SHADOW
    policy = container.policy_store.get()
    start = utcnow() - timedelta(minutes=5 * 2000)
    market, _ = synthetic_market([SYMBOL], start, 2000, policy.data.timeframe, seed=3)
    CandleStore(container).write(policy.data.exchange, SYMBOL, policy.data.timeframe, market[SYMBOL])
    # A live candle table has been vacuumed by autovacuum: index-only scans need no heap visits.
    raw = container.engine.raw_connection()
    raw.dbapi_connection.autocommit = True  # type: ignore[union-attr]
    raw.dbapi_connection.cursor().execute("VACUUM ANALYZE candles")  # type: ignore[union-attr]
    raw.close()


def _baselines(container) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from app.data_pipeline import engineer_features
    from app.prediction import PredictionService, recent_candles

    service = PredictionService(container)
    policy = container.policy_store.get()

    def read_candles():  # type: ignore[no-untyped-def]
        with container.session() as session:
            return recent_candles(session, policy, SYMBOL)

    candles = read_candles()
    pair = service.cache.pair("xgboost", *_live_ids(container))
    features = engineer_features(candles, policy.features).assign(symbol=SYMBOL)
    last, history = features.iloc[[-1]], features.iloc[:-1]
    timings: dict[str, list[float]] = {
        "model_predict_us": [],
        "xgboost_inplace_predict_us": [],
        "features_ms": [],
        "candle_read_ms": [],
    }
    booster, row = pair.active.forecaster.booster, last[pair.active.forecaster.spec.feature_columns].to_numpy("float32")
    for _ in range(300):
        t = time.perf_counter()
        booster.inplace_predict(row, validate_features=False)  # the library alone, on a ready row
        timings["xgboost_inplace_predict_us"].append((time.perf_counter() - t) * 1e6)
        t0 = time.perf_counter()
        pair.active.predict(last, history)
        t1 = time.perf_counter()
        engineer_features(candles, policy.features)
        t2 = time.perf_counter()
        read_candles()
        t3 = time.perf_counter()
        timings["model_predict_us"].append((t1 - t0) * 1e6)
        timings["features_ms"].append((t2 - t1) * 1e3)
        timings["candle_read_ms"].append((t3 - t2) * 1e3)
    return {f"baseline_{k}_p50": float(np.median(v)) for k, v in timings.items()}


def _live_ids(container) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    from app.prediction import live_model_ids

    with container.session() as session:
        active, shadow = live_model_ids(session, "xgboost")
    assert active is not None
    return active, shadow


def _paced(call, rate: float, seconds: float) -> list[float]:  # type: ignore[no-untyped-def]
    """Latencies (ms) of `call()` issued at `rate` per second for `seconds` (open-loop schedule)."""
    latencies = []
    interval = 1.0 / rate
    next_at = time.perf_counter()
    end = next_at + seconds
    while next_at < end:
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1e3)
        next_at += interval
    return latencies


# Paced over HTTP in the same server run: the prediction and both RL decisions the engine asks per signal.
HTTP_ENDPOINTS: list[tuple[str, str, dict[str, object]]] = [
    ("http", "/api/predictions", {"symbol": SYMBOL}),
    (
        "http_meta_decision",
        "/api/rl/meta-strategy/decision",
        {"state": {"market_regime": "TRENDING", "volatility_level": "MEDIUM", "liquidity_level": "HIGH",
                   "recent_performance": "NEUTRAL"}},
    ),
    (
        "http_sizing_decision",
        "/api/rl/position-sizing/decision",
        {"state": {"market_regime": "TRENDING", "signal_confidence": 0.72, "portfolio_exposure": 0.2,
                   "recent_winrate": 0.55, "volatility": 1.4}, "balance_usd": 10_000, "open_positions": 1},
    ),
]  # fmt: skip


def _http(database_url: str, artifact_root: str, rate: float, seconds: float) -> dict[str, float]:
    """Paced POSTs of each of HTTP_ENDPOINTS over one keep-alive connection (http.client: a thin
    client, so the figures are the server's and the socket's, not a client library's)."""
    import http.client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, DATABASE_URL=database_url, ARTIFACT_ROOT=artifact_root, PYTHONPATH=str(REPO))
    # As the Procfile and compose run it: 2 workers, gunicorn.conf.py's gthread threads and
    # keep-alive, request metrics summed through a multiprocess directory.
    cmd = [sys.executable, "-m", "gunicorn", "--workers", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    cmd += ["workers.wsgi:create_app()"]
    env |= {"CLM_MODE": "distributed", "CLM_API_TOKEN": "bench-token"}
    env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="clm-bench-prometheus-")
    server = subprocess.Popen(cmd, cwd=REPO, env=env)
    headers = {"Authorization": "Bearer bench-token", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def caller(path: str, payload: dict[str, object]):  # type: ignore[no-untyped-def]
        body = json.dumps(payload)

        def call() -> None:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"POST {path}: {response.status} {answer[:300]!r}")

        return call

    out: dict[str, float] = {}
    try:
        first = caller(HTTP_ENDPOINTS[0][1], HTTP_ENDPOINTS[0][2])
        deadline = time.monotonic() + 60
        while True:
            try:
                first()  # the first request loads the models
                break
            except ConnectionError:
                connection.close()
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        for name, path, payload in HTTP_ENDPOINTS:
            call = caller(path, payload)
            for _ in range(50):  # warm-up
                call()
            figures = _percentiles(_paced(call, rate, seconds))
            out |= {f"{name}_p50_ms": figures["p50"], f"{name}_p99_ms": figures["p99"]}
        return out
    finally:
        connection.close()
        server.terminate()
        server.wait(timeout=30)


def _shadow_rates(container, batch_rows: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from sqlalchemy import insert

    from app.core.db.models import ShadowTestResult
    from app.shadow_tester import ShadowTester, horizon_of
    from app.shadow_tester.rows import build_rows

    active, shadow = _live_ids(container)
    assert shadow is not None
    tester = ShadowTester(container)
    pred = {"predicted_return": 0.0012, "direction": 1, "confidence": 0.61}
    items = [
        {
            "shadow_model_id": shadow,
            "active_model_id": active,
            "symbol": SYMBOL,
            "active_pred": pred,
            "shadow_pred": pred,
        }
        for _ in range(batch_rows)
    ]
    started = time.perf_counter()
    tester.record_shadow_predictions(items)
    batched = batch_rows / (time.perf_counter() - started)
    single_n = 2000
    started = time.perf_counter()
    for _ in range(single_n):
        tester.record_shadow_prediction(shadow, active, SYMBOL, pred, pred)
    single = single_n / (time.perf_counter() - started)
    baseline_n = min(batch_rows, 50_000)
    started = time.perf_counter()
    rows = build_rows(items[:baseline_n], horizon_of(container.policy_store.get()))
    with container.engine.begin() as conn:
        conn.execute(insert(ShadowTestResult), rows)
    executemany = baseline_n / (time.perf_counter() - started)
    return {
        "shadow_rows_per_s_batched": batched,
        "shadow_rows_per_s_single": single,
        "baseline_executemany_rows_per_s": executemany,
    }


def _evaluate(container, rows: int, active: str, new_pairs: int = 1000) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """A shadow test of `rows` pairs, the last `new_pairs` (in time order) closed after an evaluation:
    the incremental evaluation (kept running statistics, then only the new pairs) against the full
    read of every pair (`incremental=False`, the baseline) on the same data, same decision."""
    from app.core.clock import utcnow
    from app.core.db.models import ModelRegistry as ModelRow
    from app.shadow_tester import ShadowTester, Thresholds, evaluate_pairs
    from app.shadow_tester.incremental import forget

    shadow = "bench_eval_shadow"  # a separate shadow test, written straight in by COPY
    with container.session() as session:
        session.add(
            ModelRow(
                model_id=shadow, model_type="bench", version="1", status="SHADOW", metrics={},
                created_at=utcnow(), file_path="none",
            )
        )  # fmt: skip
    rng = np.random.default_rng(0)
    realized = rng.normal(0, 0.01, rows)
    active_dir = rng.choice([-1, 0, 1], rows)
    shadow_dir = rng.choice([-1, 0, 1], rows)
    # One pair a minute, as a live shadow test over about two years would have them; the last
    # `new_pairs` still open.
    stamps = np.datetime_as_string(np.datetime64("2024-01-01T00:00:00") + np.arange(rows).astype("timedelta64[m]"))
    buffer = io.StringIO()
    for i in range(rows):
        stamp = stamps[i].replace("T", " ")
        outcome = repr(float(realized[i])) if i < rows - new_pairs else ""
        buffer.write(
            f'{shadow},{active},BTCUSDT,{stamp},"{{}}","{{}}",{active_dir[i]},{shadow_dir[i]},'
            f"0.6,0.6,{outcome},{stamp},{stamp}\n"
        )
    buffer.seek(0)
    raw = container.engine.raw_connection()
    cursor = raw.cursor()
    cursor.copy_expert(  # type: ignore[attr-defined]
        "COPY shadow_test_results (shadow_model_id, active_model_id, symbol, timestamp, active_prediction, "
        "shadow_prediction, active_direction, shadow_direction, active_confidence, shadow_confidence, "
        "realized_return, horizon_end, created_at) FROM STDIN WITH (FORMAT csv)",
        buffer,
    )
    cursor.execute("ANALYZE shadow_test_results")
    raw.commit()
    tester = ShadowTester(container)
    # A policy whose only look is the millionth pair (min_samples = rows): every pair counts. The
    # evaluation before the last pairs close decides on all 999,000 closed so far (a full read,
    # which keeps the running statistics), as the periodic evaluation before this one would have.
    before = tester.evaluate_shadow_model(shadow, min_samples=rows)
    assert before.total_samples == rows - new_pairs, before
    cursor.execute(
        "UPDATE shadow_test_results SET realized_return = %s, outcome_recorded_at = now() "
        "WHERE shadow_model_id = %s AND realized_return IS NULL",
        (0.001, shadow),
    )
    raw.commit()
    raw.close()
    realized[rows - new_pairs :] = 0.001
    tester.evaluate_shadow_model(shadow, min_samples=rows, incremental=False)  # warm the pages for both
    started = time.perf_counter()
    result = tester.evaluate_shadow_model(shadow, min_samples=rows)
    incremental = time.perf_counter() - started
    assert result.total_samples == rows and result.decision_samples == rows, result
    started = time.perf_counter()
    full = tester.evaluate_shadow_model(shadow, min_samples=rows, incremental=False)
    full_read = time.perf_counter() - started
    assert (result.recommendation, result.reasons) == (full.recommendation, full.reasons), (result, full)
    forget(container.engine, shadow)
    started = time.perf_counter()
    tester.evaluate_shadow_model(shadow, min_samples=rows)  # no kept state: read everything, keep it
    recompute = time.perf_counter() - started
    started = time.perf_counter()
    default = tester.evaluate_shadow_model(shadow)
    default_policy = time.perf_counter() - started
    assert default.total_samples == rows and default.decision_samples < rows, default
    started = time.perf_counter()
    report = tester.report(shadow)  # the default policy's evaluation and, beside it, both books on its pairs
    report_default = time.perf_counter() - started
    assert report["book"]["pairs"] == default.decision_samples and report["recommendation"] == default.recommendation
    started = time.perf_counter()
    report_all = tester.report(shadow, min_samples=rows)  # the book of every one of the 1M pairs
    report_1m = time.perf_counter() - started
    assert report_all["book"]["pairs"] == rows, report_all["book"]
    started = time.perf_counter()
    evaluate_pairs(active_dir, shadow_dir, realized, fee=0.002, thresholds=Thresholds(min_samples=rows))
    pure = time.perf_counter() - started
    relative = abs(result.shadow_metrics.sharpe / full.shadow_metrics.sharpe - 1.0)
    return {
        "evaluate_1m_seconds": incremental,
        "evaluate_1m_new_pairs": float(new_pairs),
        "baseline_evaluate_1m_full_read_seconds": full_read,
        "evaluate_1m_recompute_seconds": recompute,
        "evaluate_1m_pure_seconds": pure,
        "evaluate_1m_default_policy_seconds": default_policy,
        "evaluate_1m_default_policy_pairs_read": float(default.decision_samples),
        "evaluate_1m_same_decision": float(result.recommendation == full.recommendation),
        "evaluate_1m_sharpe_relative_difference": relative,
        "report_default_policy_seconds": report_default,
        "report_default_policy_book_candles": float(report["book"]["candles"]),
        "report_1m_seconds": report_1m,
        "report_1m_book_candles": float(report_all["book"]["candles"]),
    } | _book_bootstrap(container, shadow, rows)


def _book_bootstrap(container, shadow: str, rows: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The book's bootstrap (500 draws) from block sums (`scoring.bootstrap_intervals`) against the
    baseline that materialises every resampled series (`block_indices`, as before), same table and
    draws, on the default policy's 8000 pairs and on all of them."""
    from app.data_pipeline.timeframes import timeframe_ms
    from app.model_training.scoring import YEAR_MS, Bootstrap, _statistics, block_indices, bootstrap_intervals
    from app.shadow_tester.book import NAMES, _one_per_candle, book_table, read_book_pairs

    policy = container.policy_store.get()
    step_ms, horizon = timeframe_ms(policy.data.timeframe), policy.labels.horizon
    out = {}
    for label, n in (("8000", 8000), ("1m", rows)):
        first = _one_per_candle(read_book_pairs(container.engine, shadow, n), step_ms)
        table, _ = book_table(first, horizon=horizon, step_ms=step_ms, fee_pct=policy.labels.fee_pct)
        boot = Bootstrap(replicates=500)
        started = time.perf_counter()
        bootstrap_intervals(table, list(NAMES), horizon=horizon, periods_per_year=YEAR_MS / step_ms, bootstrap=boot,
                            compare_to=("active",))  # fmt: skip
        out[f"book_bootstrap_{label}_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        arrays = {c: table[c].to_numpy(dtype=float) for c in table.columns}
        periods, draws = len(table), []
        chunk = max(1, 4_000_000 // periods)
        rng = np.random.default_rng(boot.seed)
        for size in [chunk] * (500 // chunk) + ([500 % chunk] if 500 % chunk else []):
            index = block_indices(rng, periods, boot.block_length(periods, horizon), size)
            draws.append(_statistics({c: a[index] for c, a in arrays.items()}, list(NAMES), YEAR_MS / step_ms))
        out[f"baseline_book_bootstrap_{label}_materialised_seconds"] = time.perf_counter() - started
        out[f"book_bootstrap_{label}_periods"] = float(periods)
    return out


def _health(container, rows: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """`get_model_health` over `rows` logs of one model: aggregated by PostgreSQL (as on the live
    system) against the frame computation of the embedded mode on the same rows (the baseline)."""
    from app.core.clock import utcnow
    from app.model_supervisor import ModelSupervisor, health_metrics, prediction_frame

    active, _ = _live_ids(container)
    raw = container.engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute(
        "INSERT INTO prediction_logs (model_id, symbol, timestamp, predicted_return, direction, confidence, "
        "latency_ms, realized_return, created_at) "
        "SELECT %(model)s, 'BTCUSDT', %(start)s + g * interval '50 ms', 0.001, (g %% 3) - 1, random(), "
        "1 + random() * 5, CASE WHEN g %% 10 <> 0 THEN random() * 0.02 - 0.01 END, %(start)s "
        "FROM generate_series(1, %(rows)s) g",
        {"model": active, "start": utcnow() - timedelta(hours=20), "rows": rows},
    )
    cursor.execute("ANALYZE prediction_logs")
    raw.commit()
    raw.close()
    supervisor = ModelSupervisor(container)
    supervisor.get_model_health(active)  # warm, as the hourly check finds the pages
    started = time.perf_counter()
    health = supervisor.get_model_health(active)
    in_sql = time.perf_counter() - started
    assert health.total_predictions >= rows, health
    policy = container.policy_store.get()
    started = time.perf_counter()
    with container.session() as session:
        frame = prediction_frame(session, active, utcnow() - timedelta(hours=24))
    health_metrics(frame, 0.002, policy.data.symbols)
    in_frame = time.perf_counter() - started
    out = {"health_1m_seconds": in_sql, "baseline_health_1m_frame_seconds": in_frame}
    return out | _prediction_drift(container, active)


def _prediction_drift(container, model_id: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Prediction drift over the same logs (two 12-hour windows, about 580,000 and 420,000 logs):
    sampled as the check reads them, against reading every log of both windows (the baseline)."""
    from sqlalchemy import select

    from app.core.clock import utcnow
    from app.core.db.models import PredictionLog
    from app.drift_detector.service import check_prediction_drift

    started = time.perf_counter()
    result = check_prediction_drift(container, "xgboost", lookback_days=0.5)
    sampled = time.perf_counter() - started
    assert result.checked, result.reason
    started = time.perf_counter()
    with container.session() as session:
        rows = session.execute(
            select(PredictionLog.predicted_return, PredictionLog.confidence).where(
                PredictionLog.model_id == model_id, PredictionLog.timestamp >= utcnow() - timedelta(days=1)
            )
        ).all()
    everything = time.perf_counter() - started
    return {
        "prediction_drift_1m_seconds": sampled,
        "baseline_prediction_drift_read_all_seconds": everything,
        "baseline_prediction_drift_rows": float(len(rows)),
        "prediction_drift_sample_rows": float(container.policy_store.get().clm_config.drift_detection.max_sample_rows),
    }


def _only_evaluate(rows: int) -> None:
    """The shadow evaluation alone, with an ACTIVE row in the registry (no model trained)."""
    from app.core.clock import utcnow
    from app.core.db.models import ModelRegistry as ModelRow
    from app.core.migrations import upgrade
    from tests.services import create_database, drop_database

    database_url = create_database("clm_bench_live")
    try:
        upgrade(database_url)
        container = _container(database_url, tempfile.mkdtemp(prefix="clm-bench-live-"))
        with container.session() as session:
            session.add(
                ModelRow(
                    model_id="bench_eval_active", model_type="bench", version="0", status="ACTIVE", metrics={},
                    created_at=utcnow(), file_path="none",
                )
            )  # fmt: skip
        out: dict[str, float | str] = dict(_evaluate(container, rows, "bench_eval_active"))
        out["load_average_1m"] = os.getloadavg()[0]
        container.dispose()
    finally:
        drop_database(database_url)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-rows", type=int, default=200_000)
    parser.add_argument("--eval-rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["evaluate"], help="run only this part (evaluate: the shadow evaluation)")
    args = parser.parse_args()
    if args.only == "evaluate":
        _only_evaluate(args.eval_rows)
        return

    from app.core.migrations import upgrade
    from app.prediction import PredictionService
    from tests.services import create_database, drop_database

    database_url = create_database("clm_bench_live")
    artifact_root = tempfile.mkdtemp(prefix="clm-bench-live-")
    out: dict[str, float | str] = {}
    try:
        upgrade(database_url)
        container = _container(database_url, artifact_root)
        _setup(container)
        service = PredictionService(container)
        for _ in range(50):  # load the models, warm the pools
            service.predict(SYMBOL)
        inproc = _percentiles(_paced(lambda: service.predict(SYMBOL), args.rate, args.seconds))
        out |= {"inproc_p50_ms": inproc["p50"], "inproc_p99_ms": inproc["p99"]}

        def cold() -> None:
            service.cache.clear_windows()
            service.predict(SYMBOL)

        cold_rate = min(args.rate, 50.0)
        inproc_cold = _percentiles(_paced(cold, cold_rate, args.seconds / 2))
        out |= {"inproc_cold_p50_ms": inproc_cold["p50"], "inproc_cold_p99_ms": inproc_cold["p99"]}
        out |= {"inproc_cold_rate_rps": cold_rate}
        print(json.dumps(out), flush=True)
        out |= _http(database_url, artifact_root, args.rate, args.seconds) | {"rate_rps": args.rate}
        print(json.dumps(out), flush=True)
        out |= _baselines(container)
        out |= _shadow_rates(container, args.batch_rows)
        print(json.dumps(out), flush=True)
        out |= _evaluate(container, args.eval_rows, _live_ids(container)[0])
        out |= _health(container, args.eval_rows)
        out["models"] = "ACTIVE + SHADOW xgboost, up to 300 trees (early stopping), default depth"
        out["cpus"] = str(os.cpu_count())
        out["omp_num_threads"] = os.environ["OMP_NUM_THREADS"]
        out["load_average_1m"] = os.getloadavg()[0]
        container.dispose()
    finally:
        drop_database(database_url)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
