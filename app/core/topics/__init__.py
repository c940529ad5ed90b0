"""Every event topic as a type: one pydantic model per topic, its fields the payload.

Producers publish an instance (`bus.publish(session, ModelPromoted(...))`); the bus stores
`event.payload()` (JSON mode) in the `events` row. Handlers keep their `(container, event)`
signature and read the payload through the type: `DriftDetected.from_event(event)`.

Each class names its `topic` (the specification's string), the modules that publish it
(`producers`, checked against the source by `tests/unit/test_topics.py`) and the handlers
that consume it (`consumers`, as `app/handlers.py` lists them; checked there too). The
catalogue `docs/events.md` is generated from these types (`catalogue.py`):

    python -m app.core.topics > docs/events.md

Keys the specification's event tables list are required fields, beside the keys the code
has sent since (the dashboard, the alerts and the tests read those).
"""

from app.core.topics.base import TopicEvent
from app.core.topics.catalogue import EVENT_TYPES, REPLACED_TOPICS, TOPICS, catalogue
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
    RLReset,
    RLSizingDecision,
    RLSizingReset,
    RLSizingUpdated,
    RLUpdated,
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

__all__ = [
    "EVENT_TYPES",
    "REPLACED_TOPICS",
    "TOPICS",
    "AlertCritical",
    "AlertWarning",
    "ClmModelPromoted",
    "ClmRLReset",
    "DataFetchCompleted",
    "DataFetchStarted",
    "DriftDetected",
    "ModelPromoted",
    "ModelRegistered",
    "ModelRetired",
    "ModelTrainingCompleted",
    "ModelTrainingFailed",
    "ModelTrainingStarted",
    "PerformanceDegraded",
    "RLMetaReset",
    "RLMetaStrategySelected",
    "RLMetaUpdated",
    "RLReset",
    "RLSizingDecision",
    "RLSizingReset",
    "RLSizingUpdated",
    "RLUpdated",
    "RegimeChanged",
    "RetrainingCompleted",
    "RetrainingStarted",
    "RetrainingSuppressed",
    "ShadowPromoted",
    "ShadowPromotionRecommended",
    "ShadowTestingStarted",
    "SignalGenerated",
    "SystemPing",
    "TopicEvent",
    "TradeClosed",
    "TradingHalted",
    "TradingResumed",
    "catalogue",
]
