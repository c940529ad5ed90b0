"""What a main run returns: its config, container, market, statistics, stage timings and story."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from app.core.container import Container
from app.simulation.config import RunConfig
from app.simulation.engine import EngineStats
from app.simulation.market import MarketFeed
from app.simulation.story import Story

Echo = Callable[[str], None]


@dataclass
class RunResult:
    config: RunConfig
    container: Container
    feed: MarketFeed
    stats: EngineStats
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds by stage
    initial_job_id: str | None = None
    policy_version: int = 0
    prediction_ms: dict[str, float] = field(default_factory=dict)  # mean latency per model type
    report_path: Path | None = None
    story: Story | None = None  # the milestones, read back from the database
    runner_calls: list[tuple[str, float, datetime]] = field(default_factory=list)  # beat jobs run
