"""The base of every topic type: a payload model that serialises to JSON and reads back from an event."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

Json = dict[str, Any]


def _jsonable(value: Any) -> Any:
    """Fallback of the JSON dump: numpy scalars become Python's; anything else is refused."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    raise TypeError(f"an event payload cannot hold a {type(value).__name__}")


def _finite(value: Any) -> Any:
    """NaN and infinities become null: PostgreSQL's JSONB refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class TopicEvent(BaseModel):
    """The base of every event type: a topic, its producers and consumers, a typed payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: ClassVar[str]
    producers: ClassVar[tuple[str, ...]] = ()  # modules that publish it (an RL agent's module, through app.rl.agent)
    consumers: ClassVar[tuple[str, ...]] = ()  # handlers ("module:function", as in app/handlers.py)
    # True: the payload holds only the keys the producer set (a message relayed from outside,
    # stored as it was sent); False: every field, null where unset.
    sparse: ClassVar[bool] = False

    def payload(self) -> Json:
        """The stored payload: JSON values only (numpy scalars unwrapped, non-finite floats null)."""
        dumped = self.model_dump(mode="json", exclude_unset=self.sparse, fallback=_jsonable)
        return _finite(dumped)  # type: ignore[no-any-return]

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Self:
        """The typed payload of a delivered event (the dict handlers receive, with `payload`)."""
        topic = event.get("topic")
        if topic is not None and topic != cls.topic:
            raise ValueError(f"{cls.__name__} reads {cls.topic!r} events, not {topic!r}")
        return cls.model_validate(event["payload"])
