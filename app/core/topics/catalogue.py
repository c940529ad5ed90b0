"""The catalogue of every topic (`docs/events.md` is generated from it)."""

from __future__ import annotations

from typing import Any, get_args

from app.core.topics.base import TopicEvent
from app.core.topics.control import (
    ClmRLReset,
    DriftDetected,
    PerformanceDegraded,
    RegimeChanged,
    RetrainingCompleted,
    RetrainingStarted,
    RetrainingSuppressed,
    RLMetaReset,
    RLMetaStrategySelected,
    RLMetaUpdated,
    RLSizingDecision,
    RLSizingReset,
    RLSizingUpdated,
    TradingHalted,
    TradingResumed,
)
from app.core.topics.engine import (
    AlertCritical,
    AlertWarning,
    SignalGenerated,
    SystemPing,
    TradeClosed,
)
from app.core.topics.models import (
    ClmModelPromoted,
    DataFetchCompleted,
    DataFetchStarted,
    ModelPromoted,
    ModelRegistered,
    ModelRetired,
    ModelTrainingCompleted,
    ModelTrainingFailed,
    ModelTrainingStarted,
    ShadowPromoted,
    ShadowPromotionRecommended,
    ShadowTestingStarted,
)

# --------------------------------------------------------------------------- the catalogue

EVENT_TYPES: tuple[type[TopicEvent], ...] = (
    DataFetchStarted,
    DataFetchCompleted,
    ModelTrainingStarted,
    ModelTrainingCompleted,
    ModelTrainingFailed,
    ModelRegistered,
    ModelPromoted,
    ModelRetired,
    ShadowTestingStarted,
    ShadowPromotionRecommended,
    ShadowPromoted,
    RLMetaStrategySelected,
    RLMetaUpdated,
    RLMetaReset,
    RLSizingDecision,
    RLSizingUpdated,
    RLSizingReset,
    DriftDetected,
    PerformanceDegraded,
    RegimeChanged,
    RetrainingStarted,
    RetrainingCompleted,
    RetrainingSuppressed,
    ClmModelPromoted,
    ClmRLReset,
    TradingHalted,
    TradingResumed,
    SignalGenerated,
    TradeClosed,
    AlertCritical,
    AlertWarning,
    SystemPing,
)
TOPICS: dict[str, type[TopicEvent]] = {cls.topic: cls for cls in EVENT_TYPES}

# Topics of the specification that are deliberately not events, and why.
REPLACED_TOPICS: dict[str, str] = {
    "ai.prediction.logged": (
        "replaced by the `prediction_logs` table. Every served prediction (ACTIVE and SHADOW) is a "
        "row written in the prediction's own statement, at 200 predictions a second; the drift "
        "detector and the model supervisor read those rows in windows (sampled when large) instead "
        "of handling one event per prediction, which would double the writes and make each "
        "consumer keep its own copy. The served prediction is also announced as "
        "`ai.signal.generated`, stored without delivery unless a handler subscribes."
    ),
}


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return repr(annotation).replace("typing.", "").replace("datetime.datetime", "datetime").replace("NoneType", "None")


def catalogue() -> str:
    """`docs/events.md`: every topic, its producers, consumers and payload fields."""
    lines = [
        "# Event catalogue",
        "",
        "<!-- Generated from app/core/topics/ by `python -m app.core.topics > docs/events.md`; do not edit. -->",
        "",
        "Every event is a row of the `events` table (the outbox), published in the transaction of the",
        "change it reports and delivered to the handlers of `app/handlers.py` at least once. Each topic",
        "is one type in `app/core/topics/`; its payload is that type's fields (JSON).",
        "",
        "| topic | type | producers | consumers |",
        "|---|---|---|---|",
    ]
    for cls in EVENT_TYPES:
        producers = ", ".join(f"`{p}`" for p in cls.producers) or "operators, tests"
        consumers = ", ".join(f"`{c}`" for c in cls.consumers) or "(stored; read by the API and dashboard)"
        lines.append(f"| `{cls.topic}` | `{cls.__name__}` | {producers} | {consumers} |")
    lines += ["", "## Replaced topics", ""]
    for topic, reason in REPLACED_TOPICS.items():
        lines.append(f"- `{topic}`: {reason}")
    for cls in EVENT_TYPES:
        doc = " ".join((cls.__doc__ or "").split())
        lines += ["", f"## `{cls.topic}` ({cls.__name__})", "", doc, ""]
        if cls.sparse:
            lines += ["Stored as sent: only the keys the producer set.", ""]
        if cls.model_config.get("extra") == "allow":
            lines += ["Further keys beside these are allowed and kept.", ""]
        if not cls.model_fields:
            lines.append("No fixed fields.")
            continue
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        for name, field in cls.model_fields.items():
            required = "yes" if field.is_required() else "no"
            lines.append(f"| `{name}` | `{_type_name(field.annotation)}` | {required} | {field.description or ''} |")
    return "\n".join(lines) + "\n"
