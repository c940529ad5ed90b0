"""Events of made-up topics, for the tests of the event bus itself (not of any service)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from app.core.topics import TopicEvent


class AnyTopicEvent(TopicEvent):
    """A payload of any keys; each made-up topic is a subclass (`make_event`)."""

    model_config = ConfigDict(extra="allow")


def make_event(topic: str, **payload: Any) -> TopicEvent:
    """An event of `topic` carrying `payload` as it is."""
    event_type = type(f"Event_{topic.replace('.', '_')}", (AnyTopicEvent,), {"topic": topic, "__module__": __name__})
    return event_type(**payload)
