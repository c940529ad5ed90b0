"""Real rows for the API, dashboard and metrics tests: a CLM that has been running a while."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.bootstrap import Container
from app.core.clock import utcnow
from app.core.db.models import (
    DriftEvent,
    ModelPerformanceLog,
    ModelRegistry,
    ModelStatusHistory,
    PredictionLog,
    RetrainingJob,
    RLAgentState,
    RLQValue,
    ShadowTestResult,
)

TOKEN_HEADER = {"Authorization": "Bearer test-token-not-a-secret"}


@dataclass
class Seeded:
    active_id: str
    shadow_id: str
    retired_id: str
    failed_job: str
    done_job: str
    running_job: str


def _model(container: Container, model_type: str, version: int, status: str, days_ago: float, **metrics: float):
    path = f"models/{model_type}/run-{version}/model.bin"
    data = f"{model_type}-{version}".encode()
    container.artifacts.put_bytes(path, data)
    created = utcnow() - timedelta(days=days_ago)
    return ModelRegistry(
        model_id=f"{model_type}_v{version}",
        model_type=model_type,
        version=str(version),
        status=status,
        metrics={"test": dict(metrics)} if metrics else {},
        created_at=created,
        promoted_at=created + timedelta(hours=1) if status == "ACTIVE" else None,
        file_path=path,
        file_size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def seed_clm_state(container: Container, shadow_samples: int = 40) -> Seeded:
    """Models of two types (retired, active, shadow), jobs, a shadow test, drift, RL agents, logs."""
    now = utcnow()
    with container.session() as s:
        s.add_all(
            [
                _model(container, "xgboost", 1, "RETIRED", 20, directional_accuracy=0.52),
                _model(container, "xgboost", 2, "ACTIVE", 9, directional_accuracy=0.55, sharpe=1.2),
                _model(container, "xgboost", 3, "SHADOW", 2, directional_accuracy=0.58, sharpe=1.5),
                _model(container, "lightgbm", 1, "ACTIVE", 9, directional_accuracy=0.54, sharpe=0.9),
            ]
        )
        s.flush()
        s.add(
            ModelStatusHistory(
                model_id="xgboost_v1", model_type="xgboost", old_status="SHADOW", new_status="ACTIVE",
                changed_at=now - timedelta(days=15), reason="shadow test passed",
            )
        )  # fmt: skip
        s.add(
            ModelStatusHistory(
                model_id="xgboost_v2", model_type="xgboost", old_status="SHADOW", new_status="ACTIVE",
                changed_at=now - timedelta(days=8), reason="shadow test passed",
            )
        )  # fmt: skip
        jobs = [
            ("RTN-20260101-001", "full", "completed", 12, 2700, None),
            ("RTN-20260102-001", "partial", "failed", 0.5, 300, "xgboost: TimeoutError: training took too long"),
            ("RTN-20260103-001", "full", "running", 0.05, None, None),
        ]
        for job_id, job_type, status, days_ago, seconds, error in jobs:
            started = now - timedelta(days=days_ago)
            s.add(
                RetrainingJob(
                    job_id=job_id, job_type=job_type, trigger_reason="scheduled", status=status,
                    started_at=started, created_at=started,
                    completed_at=started + timedelta(seconds=seconds) if seconds else None,
                    duration_seconds=seconds, model_types=["xgboost", "lightgbm"],
                    models_trained={"xgboost": {"model_id": "xgboost_v3", "status": "trained"}},
                    error_message=error, stage="training" if status == "running" else "done",
                    progress_pct=40.0 if status == "running" else 100.0,
                )
            )  # fmt: skip
        for i in range(shadow_samples):
            ts = now - timedelta(minutes=30 * (shadow_samples - i))
            ret = 0.004 if i % 3 else -0.003
            s.add(
                ShadowTestResult(
                    shadow_model_id="xgboost_v3", active_model_id="xgboost_v2", symbol="BTC/USDT", timestamp=ts,
                    active_prediction={"direction": 1}, shadow_prediction={"direction": 1 if i % 3 else -1},
                    actual_outcome={"realized_return": ret}, outcome_recorded_at=ts,
                    active_direction=1 if i % 2 else -1, shadow_direction=1 if i % 3 else -1,
                    active_confidence=0.6, shadow_confidence=0.7, realized_return=ret, created_at=ts,
                )
            )  # fmt: skip
        for i, (severity, p_value, feature) in enumerate(
            [("low", 0.04, "rsi_14"), ("high", 0.001, "atr_14"), ("critical", 0.00001, "volume_z_48")]
        ):
            at = now - timedelta(hours=30 - 12 * i)
            s.add(
                DriftEvent(
                    detected_at=at, drift_type="feature", model_type=None, feature_name=feature, p_value=p_value,
                    threshold=0.05, severity=severity, action_taken="alert_sent", created_at=at,
                )
            )  # fmt: skip
        for rl_type, version, n_states in (("meta_strategy", 13, 7), ("position_sizing", 35, 11)):
            s.add(RLAgentState(rl_type=rl_type, version=version, total_updates=1250, epsilon=0.12, updated_at=now))
            for k in range(n_states):
                s.add(RLQValue(rl_type=rl_type, version=version, state_key=f"s{k}", action="a", q_value=0.1 * k))
        for model_id, winrate in (("xgboost_v2", 0.56), ("lightgbm_v1", 0.51)):
            s.add(
                ModelPerformanceLog(
                    model_id=model_id, timestamp=now - timedelta(hours=1), winrate=winrate, total_trades=80,
                    avg_confidence=0.6, calibration_error=0.08, created_at=now,
                )
            )  # fmt: skip
        for i, latency in enumerate((3.0, 12.0, 40.0, 80.0, 700.0)):
            s.add(
                PredictionLog(
                    model_id="xgboost_v2", symbol="BTC/USDT", timestamp=now - timedelta(minutes=i), direction=1,
                    confidence=0.6, predicted_return=0.001, latency_ms=latency, created_at=now,
                )
            )  # fmt: skip
    return Seeded(
        active_id="xgboost_v2",
        shadow_id="xgboost_v3",
        retired_id="xgboost_v1",
        failed_job="RTN-20260102-001",
        done_job="RTN-20260101-001",
        running_job="RTN-20260103-001",
    )


def train_naive(container: Container, seed: int = 7) -> str:
    """Train and register a real `naive` model on a synthetic hourly market; returns its model id.

    The models are fixtures of lifecycle and API tests, not claims of skill: the baseline gate is
    turned off (one policy version, the first time) so each registers as ACTIVE or SHADOW."""
    from app.data_pipeline.dataset import DatasetSpec, build_dataset
    from app.model_registry import ModelRegistry as Registry
    from app.model_training.service import train_model

    if container.policy_store.get().clm_config.baseline_gate.enabled:
        container.policy_store.update({"clm_config": {"baseline_gate": {"enabled": False}}}, author="test fixture")
    end = datetime(2026, 1, 1)
    spec = DatasetSpec(
        symbols=("BTC/USDT",), timeframe="1h", start=end - timedelta(days=120), end=end, source="synthetic", seed=seed
    )
    dataset = build_dataset(container, spec)
    return Registry(container).register_model(train_model(container, "naive", dataset.dataset_id))


def synthetic_candles(periods: int = 300, seed: int = 11) -> list[dict[str, float]]:
    from app.data_pipeline.synthetic import synthetic_market

    frames, _ = synthetic_market(["BTC/USDT"], datetime(2026, 2, 1), periods, timeframe="1h", seed=seed)
    frame = frames["BTC/USDT"]
    columns = ["timestamp", "open", "high", "low", "close", "volume"]
    return [{c: (int(r[c]) if c == "timestamp" else float(r[c])) for c in columns} for r in frame.to_dict("records")]


# In each market state one strategy wins and every other loses: an agent that learns beats random.
WINNING_STRATEGY = {
    ("TRENDING", "HIGH", "MEDIUM", "GOOD"): "breakout",
    ("RANGING", "LOW", "HIGH", "NEUTRAL"): "mean_reversion",
}


def train_meta_agent(container: Container, trades: int = 200, seed: int = 5) -> int:
    """A real meta-strategy agent trades `trades` times in that market, learns, and saves a version (returned)."""
    import random

    from app.rl.meta_space import MetaStrategyState
    from app.rl.meta_strategy import RLMetaStrategy

    market = random.Random(seed)
    agent = RLMetaStrategy(container, rng=random.Random(seed + 1))
    states = [(MetaStrategyState(*levels), winner) for levels, winner in WINNING_STRATEGY.items()]
    for i in range(trades):
        state, winner = market.choice(states)
        strategy = agent.select_strategy(state)
        agent.update_q_table(state, strategy, 1.0 if strategy.value == winner else -1.0, trade_id=f"meta-{seed}-{i}")
    return agent.save_version(reason="trained")
