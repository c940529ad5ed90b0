"""The typed events (app/core/topics/): the catalogue, the publishers in the source, the specification."""

from __future__ import annotations

import ast
import fnmatch
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from app.core.topics import (
    EVENT_TYPES,
    REPLACED_TOPICS,
    TOPICS,
    DriftDetected,
    ModelPromoted,
    TopicEvent,
    TradeClosed,
    catalogue,
)

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
CATALOGUE = ROOT / "docs" / "events.md"

# The specification's event tables ("EventBus Integration Points"): topic -> the payload keys it lists.
SPECIFICATION_PUBLISHED = {
    "data.fetch.started": {"symbols", "start_date", "end_date"},
    "data.fetch.completed": {"rows", "features", "duration_sec"},
    "model.training.started": {"model_type", "job_id"},
    "model.training.completed": {"model_id", "metrics", "duration_sec"},
    "model.registered": {"model_id", "model_type", "version"},
    "model.promoted": {"model_id", "old_status", "new_status"},
    "model.retired": {"model_id", "reason"},
    "shadow.testing.started": {"model_id", "target_samples"},
    "shadow.promotion.recommended": {"model_id", "metrics_comparison"},
    "shadow.promoted": {"model_id", "final_metrics"},
    "rl.meta.strategy_selected": {"state", "strategy", "q_value"},
    "rl.meta.updated": {"state", "action", "reward", "version"},
    "rl.meta.reset": {"old_version", "new_version", "reason"},
    "rl.sizing.decision": {"state", "action", "size_usd", "leverage"},
    "rl.sizing.updated": {"state", "action", "reward", "version"},
    "rl.sizing.reset": {"old_version", "new_version", "reason"},
    "drift.detected": {"drift_type", "feature", "p_value", "severity"},
    "model.performance.degraded": {"model_id", "metrics", "recommendation"},
    "clm.retraining.started": {"job_id", "trigger_reason"},
    "clm.retraining.completed": {"job_id", "models_trained", "duration_sec"},
}
SPECIFICATION_SUBSCRIBED = {
    "ai.signal.generated",
    "execution.trade.closed",
    "ai.prediction.logged",
    "drift.detected",
    "model.performance.degraded",
    "regime.changed",
    "shadow.promotion.recommended",
}


def test_the_committed_catalogue_is_generated_from_the_types() -> None:
    assert CATALOGUE.read_text() == catalogue(), (
        "docs/events.md is out of date with app/core/topics/; regenerate: python -m app.core.topics > docs/events.md"
    )


def test_every_topic_of_the_specification_is_a_type_with_its_keys() -> None:
    for topic, keys in SPECIFICATION_PUBLISHED.items():
        assert topic in TOPICS, f"the specification's {topic} has no type in app/core/topics/"
        fields = set(TOPICS[topic].model_fields)
        assert keys <= fields, f"{topic} lacks the specification's keys {sorted(keys - fields)}"
        assert TOPICS[topic].producers, f"{topic}: nothing in app/ publishes it"
    for topic in SPECIFICATION_SUBSCRIBED:
        assert topic in TOPICS or topic in REPLACED_TOPICS, f"the specification's {topic} is neither typed nor replaced"
    assert "ai.prediction.logged" in REPLACED_TOPICS and "prediction_logs" in REPLACED_TOPICS["ai.prediction.logged"]


def test_the_types_are_listed_once_with_distinct_topics() -> None:
    declared = [
        value
        for value in vars(__import__("app.core.topics", fromlist=["x"])).values()
        if isinstance(value, type) and issubclass(value, TopicEvent) and "topic" in vars(value)
    ]
    assert set(declared) == set(EVENT_TYPES), "every class with a topic is listed in EVENT_TYPES"
    assert len(TOPICS) == len(EVENT_TYPES), "two types share a topic"
    assert not set(TOPICS) & set(REPLACED_TOPICS)


# --------------------------------------------------------------------------- the source


def _modules() -> dict[str, ast.Module]:
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): ast.parse(path.read_text())
        for path in APP.rglob("*.py")
    }


def _event_argument(call: ast.Call) -> ast.expr | None:
    """The event a `publish(session, event)` / `event_values(event)` call passes."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name == "publish" and len(call.args) >= 2:
        return call.args[1]
    if name == "event_values" and call.args:
        return call.args[0]
    return None


def test_every_publish_in_app_passes_a_typed_event() -> None:
    untyped = []
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            argument = _event_argument(node)
            if isinstance(argument, ast.Constant | ast.JoinedStr | ast.Dict | ast.BinOp):
                untyped.append(f"{module}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert untyped == [], "publish with a topic string or a dict payload:\n" + "\n".join(untyped)


def test_each_type_is_published_exactly_by_its_declared_producers() -> None:
    names = {cls.__name__: cls for cls in EVENT_TYPES}
    # A type is published where it is named: called, chosen (`A if ... else B`), passed to a
    # helper (`self._publish(session, ModelPromoted, ...)`) or set as an agent's `updated_event`.
    found: dict[str, set[str]] = {name: set() for name in names}
    for module, tree in _modules().items():
        if module == "app.core.topics":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
                found[node.func.id].add(module)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in names:
                found[node.value.id].add(module)  # an agent's `updated_event = RLMetaUpdated`
            if isinstance(node, ast.IfExp) and isinstance(node.body, ast.Name) and node.body.id in names:
                for branch in (node.body, node.orelse):  # AlertCritical if ... else AlertWarning
                    if isinstance(branch, ast.Name) and branch.id in names:
                        found[branch.id].add(module)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "_publish":
                for arg in node.args:  # the registry's _publish(session, ModelPromoted, row, ...)
                    if isinstance(arg, ast.Name) and arg.id in names:
                        found[arg.id].add(module)
    mismatched = {
        name: (sorted(found[name]), sorted(cls.producers))
        for name, cls in names.items()
        if found[name] != set(cls.producers)
    }
    assert mismatched == {}, f"type: (modules that publish it, declared producers): {mismatched}"


def test_declared_consumers_are_the_handler_table() -> None:
    from app.handlers import HANDLER_TABLE

    def handler_name(target: object) -> str:
        if isinstance(target, str):
            return target
        return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"

    for cls in EVENT_TYPES:
        subscribed = {
            handler_name(target) for pattern, target in HANDLER_TABLE if fnmatch.fnmatchcase(cls.topic, pattern)
        }
        assert subscribed == set(cls.consumers), f"{cls.topic}: app/handlers.py has {sorted(subscribed)}"


def test_handlers_read_payloads_through_the_types() -> None:
    offenders = [
        f"{module}:{node.lineno}"
        for module, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "payload"
    ]
    assert offenders == [], f'event.get("payload", ...) instead of <Type>.from_event(event): {offenders}'


# --------------------------------------------------------------------------- the types


def test_payload_is_json_with_every_field_and_reads_back() -> None:
    event = ModelPromoted(
        model_id="xgboost_v2", model_type="xgboost", version="2", status="ACTIVE", job_id=None, reason="better",
        previous_model_id="xgboost_v1", old_status="SHADOW", new_status="ACTIVE",
    )  # fmt: skip
    payload = event.payload()
    assert payload["job_id"] is None and payload["old_status"] == "SHADOW"
    assert ModelPromoted.from_event({"topic": "model.promoted", "payload": payload}) == event
    with pytest.raises(ValueError, match=r"model\.retired"):
        ModelPromoted.from_event({"topic": "model.retired", "payload": payload})
    with pytest.raises(ValidationError, match="old_status"):
        ModelPromoted.from_event({"payload": {k: v for k, v in payload.items() if k != "old_status"}})


def test_payload_turns_numpy_and_non_finite_numbers_into_json() -> None:
    drift = DriftDetected(
        drift_type="feature", feature="rsi_14", p_value=float("nan"), severity="HIGH",
        ks_statistic=np.float64(0.4), n_current=np.int64(500), psi=math.inf,
    )  # fmt: skip
    payload = drift.payload()
    assert payload["p_value"] is None and payload["psi"] is None
    assert payload["n_current"] == 500 and type(payload["n_current"]) is int
    assert payload["ks_statistic"] == 0.4


def test_a_relayed_trade_is_stored_as_sent() -> None:
    sent = {"trade_id": "t-1", "pnl_pct": 1.5, "duration_hours": 2.0, "prediction_id": 7}
    assert TradeClosed(**sent).payload() == sent
