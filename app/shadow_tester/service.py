"""The shadow tester (specification `shadow_tester.py`): record pairs, close them, evaluate, promote.

The prediction service records each ACTIVE prediction beside the SHADOW model's; outcomes
close the pairs (`execution.trade.closed`, or the candles once the horizon has passed);
`evaluate_shadow_model` compares both on the closed pairs (`stats.evaluate_pairs`) and
`promote_if_ready` decides, and has `promotion.carry_out` act on the decision.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.frames import rows_frame
from app.core.db.models import ModelRegistry as ModelRow
from app.core.db.models import ShadowTestResult
from app.core.policy import Policy
from app.core.topics import (
    ModelRegistered,
    ShadowTestingStarted,
    TradeClosed,
)
from app.data_pipeline.timeframes import timeframe_ms
from app.model_registry import ACTIVE, SHADOW, ModelRegistry
from app.model_training.storage import json_safe
from app.shadow_tester import outcomes
from app.shadow_tester.book import DEFAULT_REPLICATES, book_report, read_book_pairs
from app.shadow_tester.copy_writer import copy_predictions, insert_rows
from app.shadow_tester.incremental import running_stats
from app.shadow_tester.promotion import ShadowDecision, carry_out
from app.shadow_tester.reads import TIMESTAMP_COLUMN, closed_pairs
from app.shadow_tester.regime import ShadowRule, rule_for
from app.shadow_tester.rows import ShadowPrediction, build_rows, check_model_ids, shadow_row, telemetry_commit
from app.shadow_tester.running import evaluate_running
from app.shadow_tester.stats import (
    ShadowEvaluationResult,
    Thresholds,
    evaluate_pairs,
    paired_block_us,
    round_trip_fee,
)
from app.shadow_tester.targets import UnknownOutcomeTarget, named_pairs

if TYPE_CHECKING:
    from app.core.container import Container
    from app.model_registry import ModelRegistry

log = logging.getLogger(__name__)


def horizon_of(policy: Policy) -> timedelta:
    """How far ahead a prediction looks: the label horizon in candles of the policy's timeframe."""
    return timedelta(milliseconds=policy.labels.horizon * timeframe_ms(policy.data.timeframe))


class ShadowTester:
    def __init__(self, container: Container) -> None:
        self.container = container

    # ----------------------------------------------------------------- recording

    def start_testing(self, shadow_model_id: str) -> None:
        """Announce a shadow test (`shadow.testing.started`) for a SHADOW model."""
        policy = self.container.policy_store.get()
        with self.container.session() as session:
            shadow = session.get(ModelRow, shadow_model_id)
            if shadow is None:
                raise LookupError(f"no model with id {shadow_model_id!r}")
            active = session.scalars(
                select(ModelRow.model_id).where(ModelRow.model_type == shadow.model_type, ModelRow.status == ACTIVE)
            ).first()
            min_samples = policy.clm_config.auto_promote_threshold.min_samples
            self.container.bus.publish(
                session,
                ShadowTestingStarted(
                    model_id=shadow_model_id,
                    shadow_model_id=shadow_model_id,
                    active_model_id=active,
                    model_type=shadow.model_type,
                    target_samples=min_samples,
                    min_samples=min_samples,
                ),
            )

    def record_shadow_prediction(
        self,
        shadow_model_id: str,
        active_model_id: str,
        symbol: str,
        active_pred: Mapping[str, Any],
        shadow_pred: Mapping[str, Any],
        *,
        timestamp: datetime | None = None,
        trade_id: str | None = None,
        session: Session | None = None,
    ) -> int:
        """Record one pair; returns its test id. With `session`, joins the caller's transaction."""
        item = ShadowPrediction(shadow_model_id, active_model_id, symbol, active_pred, shadow_pred, timestamp, trade_id)
        if session is not None:
            return self._add_pair(session, item)
        with self.container.session() as own:
            telemetry_commit(own)
            return self._add_pair(own, item)

    def _add_pair(self, session: Session, item: ShadowPrediction) -> int:
        values = shadow_row(item, horizon_of(self.container.policy_store.get(session)), utcnow())
        check_model_ids(session, [values])
        row = ShadowTestResult(**values)
        session.add(row)
        session.flush()
        return int(row.id)

    def record_shadow_predictions(self, items: Iterable[ShadowPrediction | Mapping[str, Any]]) -> int:
        """Record many pairs in one transaction (COPY on PostgreSQL); all valid or none written."""
        engine, horizon = self.container.engine, horizon_of(self.container.policy_store.get())
        if engine.dialect.name == "postgresql":
            return copy_predictions(engine, items, horizon)
        rows = build_rows(items, horizon)
        with self.container.session() as session:
            check_model_ids(session, rows)
        return insert_rows(engine, rows)

    # ----------------------------------------------------------------- outcomes

    def record_outcome(self, test_id: int, outcome: Mapping[str, Any]) -> bool:
        """Close one pair with its outcome; False when it was already closed (idempotent)."""
        with self.container.session() as session:
            row = session.get(ShadowTestResult, test_id, with_for_update=True)
            if row is None:
                raise LookupError(f"no shadow test result with id {test_id}")
            if row.actual_outcome is not None:
                return False
            realized = outcomes.realized_return_from_trade(outcome, row.active_direction, f"outcome of test {test_id}")
            row.actual_outcome = dict(outcome)
            row.realized_return = realized
            row.outcome_recorded_at = utcnow()
            row.trade_id = str(outcome["trade_id"]) if outcome.get("trade_id") is not None else row.trade_id
            return True

    def close_from_trade(self, payload: Mapping[str, Any]) -> int:
        """Close the pairs a closed trade settles; returns how many were closed.

        The pairs are named by `shadow_test_id` / `shadow_test_ids` in the event (the
        prediction service returns the id), or by the served `prediction_id` (the pair
        recorded with that prediction): exactly those, none when an id names nothing
        (`targets`). Only when the trade names no id: for each shadow model, the latest open
        pair of the trade's symbol made at or before the trade opened (`opened_at`, ISO time,
        else `closed_at` or now minus `duration_hours`). A trade already applied is skipped.
        """
        trade_id = payload.get("trade_id")
        with self.container.session() as session:
            if (
                trade_id is not None
                and session.scalars(
                    select(ShadowTestResult.id).where(ShadowTestResult.trade_id == str(trade_id)).limit(1)
                ).first()
            ):
                return 0
            try:
                named = named_pairs(session, payload)
            except UnknownOutcomeTarget as exc:
                log.warning("trade %s closes no shadow test: %s", trade_id, exc)
                return 0
            ids = named if named is not None else self._match_by_time(session, payload)
        closed = 0
        for test_id in ids:
            try:
                closed += self.record_outcome(test_id, payload)
            except (LookupError, ValueError) as exc:
                log.warning("trade %s cannot close shadow test %s: %s", trade_id, test_id, exc)
        return closed

    def _match_by_time(self, session: Session, payload: Mapping[str, Any]) -> list[int]:
        symbol = payload.get("symbol")
        if not symbol:
            return []
        opened = _opened_at(payload)
        open_rows = session.execute(
            select(ShadowTestResult.id, ShadowTestResult.shadow_model_id)
            .where(
                ShadowTestResult.symbol == symbol,
                ShadowTestResult.actual_outcome.is_(None),
                ShadowTestResult.timestamp <= opened,
            )
            .order_by(ShadowTestResult.timestamp.desc(), ShadowTestResult.id.desc())
            .limit(50)
        ).all()
        latest: dict[str, int] = {}
        for test_id, shadow_model_id in open_rows:
            latest.setdefault(shadow_model_id, test_id)
        return list(latest.values())

    def resolve_outcomes(self, now: datetime | None = None, limit: int = 200_000) -> dict[str, int]:
        """Close the open pairs whose horizon has passed from the candles (see `outcomes`)."""
        policy = self.container.policy_store.get()
        now = now or utcnow()
        tf_ms = timeframe_ms(policy.data.timeframe)
        # The open pairs' ids from their partial index (idx_outcome_null): asked as one filter with the
        # ORDER BY id, SQLite walked the whole table in id order instead (a read that grew with every pair).
        open_ids = select(ShadowTestResult.id).where(ShadowTestResult.actual_outcome.is_(None))
        with self.container.session() as session:
            rows = session.execute(
                select(
                    ShadowTestResult.id,
                    ShadowTestResult.symbol,
                    ShadowTestResult.timestamp,
                    ShadowTestResult.horizon_end,
                )
                .where(ShadowTestResult.id.in_(open_ids), ShadowTestResult.horizon_end <= now)
                .order_by(ShadowTestResult.id)
                .limit(limit)
            ).all()
            frame = rows_frame(rows, ["id", "symbol", "timestamp", "horizon_end"])
            updates = outcomes.resolve_frame(session, frame, policy.data.exchange, policy.data.timeframe, tf_ms, now)
            if updates:
                session.execute(update(ShadowTestResult), updates)
        resolved = sum(1 for u in updates if u["realized_return"] is not None)
        return {"resolved": resolved, "expired": len(updates) - resolved, "pending": len(rows) - len(updates)}

    # ----------------------------------------------------------------- evaluation

    def evaluate_shadow_model(
        self, shadow_model_id: str, min_samples: int | None = None, *, incremental: bool = True
    ) -> ShadowEvaluationResult:
        """Both models' metrics on the closed pairs and a recommendation (see `stats`).

        Incremental (the default): from the test's kept running statistics and only the pairs
        closed after them (`incremental`); the figures equal a full read's up to float rounding
        of the sums, the recommendation is the same. `incremental=False`: every pair the
        decision looks at is read and compared (`reads.closed_pairs`, `stats.evaluate_pairs`)."""
        policy = self.container.policy_store.get()
        limits = policy.clm_config.auto_promote_threshold
        fee = round_trip_fee(policy.labels.fee_pct)
        block_us = paired_block_us(policy.labels.horizon, timeframe_ms(policy.data.timeframe))
        with self.container.session() as session:
            active_model_id = session.scalars(
                select(ShadowTestResult.active_model_id)
                .where(ShadowTestResult.shadow_model_id == shadow_model_id)
                .order_by(ShadowTestResult.timestamp.desc(), ShadowTestResult.id.desc())  # idx_shadow_model
                .limit(1)
            ).first()
            rule = rule_for(session, policy, shadow_model_id, active_model_id)
        thresholds = Thresholds(
            min_samples=limits.min_samples if min_samples is None else min_samples,
            min_improvement_pct=limits.min_improvement_pct,
            max_drawdown_pct=limits.max_drawdown_pct,
            significance_level=limits.significance_level,
            max_samples=max(limits.max_samples, limits.min_samples if min_samples is None else min_samples),
            non_inferiority_margin=rule.margin,
        )
        if incremental:
            evaluated = running_stats(self.container.engine, shadow_model_id, thresholds, fee, block_us)
            result = evaluate_running(evaluated.running, evaluated.total, thresholds,
                                      shadow_model_id=shadow_model_id, active_model_id=active_model_id)  # fmt: skip
            return _with_rule(result, rule)
        pairs = closed_pairs(self.container.engine, shadow_model_id, thresholds.decision_samples)
        columns = pairs.columns
        return _with_rule(evaluate_pairs(
            columns["active_direction"],
            columns["shadow_direction"],
            columns["realized_return"],
            fee=fee,
            thresholds=thresholds,
            shadow_model_id=shadow_model_id,
            active_model_id=active_model_id,
            active_confidence=columns["active_confidence"],
            shadow_confidence=columns["shadow_confidence"],
            total_samples=pairs.total,
            timestamp_us=columns[TIMESTAMP_COLUMN],
            block_us=block_us,
        ), rule)  # fmt: skip

    def report(
        self, shadow_model_id: str, min_samples: int | None = None, *, replicates: int = DEFAULT_REPLICATES
    ) -> dict[str, Any]:
        """The evaluation (`evaluate_shadow_model`: the per-pair figures and the recommendation) and,
        beside it, both models scored as staggered books on the same pairs by the project's scoring
        module (`book`: net PnL, Sharpe, DA on traded rows, share traded, and shadow - active with
        its block-bootstrap 95 % interval). The book is reported, never decided on."""
        result = self.evaluate_shadow_model(shadow_model_id, min_samples)
        policy = self.container.policy_store.get()
        pairs = read_book_pairs(self.container.engine, shadow_model_id, result.decision_samples)
        book = book_report(
            pairs,
            horizon=policy.labels.horizon,
            step_ms=timeframe_ms(policy.data.timeframe),
            fee_pct=policy.labels.fee_pct,
            replicates=replicates,
            seed=policy.training.seed,
        )
        return result.to_dict() | {"book": json_safe(book)}

    # ----------------------------------------------------------------- promotion

    def promote_if_ready(self, shadow_model_id: str) -> bool:
        """Decide on the evaluation, PROMOTE (if the policy allows auto-promotion) or REJECT,
        and have `promotion.carry_out` act on it; True when the shadow was promoted.

        A model that is no longer SHADOW is left alone.
        """
        record = ModelRegistry(self.container).get_model(shadow_model_id)
        if record.status != SHADOW:
            return False
        result = self.evaluate_shadow_model(shadow_model_id)
        auto_promote = self.container.policy_store.get().clm_config.auto_promote_threshold.auto_promote
        return carry_out(self.container, ShadowDecision.of(record.model_type, result, auto_promote))

    def evaluate_all_shadows(self) -> list[dict[str, Any]]:
        """Resolve what the candles can close, then evaluate (and act on) every SHADOW model."""
        self.resolve_outcomes()
        with self.container.session() as session:
            shadow_ids = list(session.scalars(select(ModelRow.model_id).where(ModelRow.status == SHADOW)))
        summary = []
        for shadow_model_id in shadow_ids:
            promoted = self.promote_if_ready(shadow_model_id)
            with self.container.session() as session:
                status = session.scalar(select(ModelRow.status).where(ModelRow.model_id == shadow_model_id))
            summary.append({"shadow_model_id": shadow_model_id, "promoted": promoted, "status": status})
        return summary


def _with_rule(result: ShadowEvaluationResult, rule: ShadowRule) -> ShadowEvaluationResult:
    """The result with the reason its test asked non-inferiority first among its reasons."""
    return replace(result, reasons=[rule.reason, *result.reasons]) if rule.reason else result


def _naive_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _opened_at(payload: Mapping[str, Any]) -> datetime:
    if payload.get("opened_at"):
        return _naive_utc(str(payload["opened_at"]))
    closed = _naive_utc(str(payload["closed_at"])) if payload.get("closed_at") else utcnow()
    return closed - timedelta(hours=float(payload.get("duration_hours") or 0.0))


def on_trade_closed(container: Container, event: dict[str, Any]) -> None:
    """Handler of `execution.trade.closed`."""
    ShadowTester(container).close_from_trade(TradeClosed.from_event(event).payload())


def on_model_registered(container: Container, event: dict[str, Any]) -> None:
    """Handler of `model.registered`: a new SHADOW model starts its shadow test."""
    registered = ModelRegistered.from_event(event)
    if registered.status == SHADOW:
        ShadowTester(container).start_testing(registered.model_id)
