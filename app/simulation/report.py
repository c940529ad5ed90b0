"""The end of the run: the timeline, models, shadow decisions, RL versions; and an HTML report.

Everything is read back from the database (events in simulated time), so the report
shows what the system recorded, not what the engine believes happened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.core.db.models import ModelRegistry, RLVersion
from app.model_registry.records import ACTIVE, REJECTED, SHADOW
from app.simulation import svg
from app.simulation.market import from_ms
from app.simulation.result import Echo, RunResult
from app.simulation.story import Story, read_story
from app.simulation.timeline import Milestone, milestones, story_events

METRICS = ("directional_accuracy", "rmse", "sharpe")


def relative(at: datetime, start: datetime) -> str:
    delta = at - start
    days, rest = divmod(int(delta.total_seconds()), 86_400)
    sign = "-" if days < 0 else "+"
    return f"T{sign}{abs(days)}d{rest // 3600:02d}h"


def write_report(result: RunResult, say: Echo) -> Path:
    container, feed = result.container, result.feed
    start = from_ms(int(feed.timestamps[feed.replay_index]))
    shift_ms = feed.info.get("shift_at_ms")
    shift_at = from_ms(shift_ms) if shift_ms is not None else None
    lines = milestones(story_events(container))
    story = read_story(container, shift_at)
    result.story = story
    models = _models(container)
    rl_versions = _rl_versions(container)
    text = _text(result, start, shift_at, lines, story, models, rl_versions)
    for line in text:
        say(line)
    path = result.config.report_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_html(result, start, shift_at, lines, story, models, rl_versions, text), encoding="utf-8")
    say(f"HTML report: {path}")
    return path


def _models(container: Any) -> list[dict[str, Any]]:
    with container.session_factory() as session:
        rows = session.scalars(select(ModelRegistry).order_by(ModelRegistry.model_type, ModelRegistry.created_at)).all()
        out = []
        for row in rows:
            metrics = dict(row.metrics or {})
            persistence = (metrics.get("baselines") or {}).get("persistence") or {}
            out.append(
                {
                    "model_id": row.model_id,
                    "model_type": row.model_type,
                    "version": row.version,
                    "status": row.status,
                    "created_at": row.created_at,
                    "promoted_at": row.promoted_at,
                    "retired_at": row.retired_at,
                    "job_id": row.job_id,
                    **{m: metrics.get(m) for m in METRICS},
                    "persistence_da": persistence.get("directional_accuracy"),
                }
            )
        return out


def _rl_versions(container: Any) -> list[dict[str, Any]]:
    with container.session_factory() as session:
        rows = session.scalars(select(RLVersion).order_by(RLVersion.rl_type, RLVersion.version)).all()
        return [
            {
                "rl_type": v.rl_type,
                "version": v.version,
                "created_at": v.created_at,
                "archived_at": v.archived_at,
                "states": v.total_states,
                "updates": v.total_updates,
                "epsilon": v.epsilon,
                "file": v.q_table_file,
                "reason": (v.metadata_ or {}).get("reason"),
            }
            for v in rows
        ]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, datetime):
        return f"{value:%m-%d %H:%M}"
    return "-" if value is None else str(value)


def _text(
    result: RunResult,
    start: datetime,
    shift_at: datetime | None,
    lines: list[Milestone],
    story: Story,
    models: list[dict[str, Any]],
    rl_versions: list[dict[str, Any]],
) -> list[str]:
    stats = result.stats
    out = ["", f"Timeline (simulated time; T = replay start {start:%Y-%m-%d %H:%M})"]
    if shift_at is not None:
        out.append(f"  {relative(shift_at, start):>10}  {shift_at:%m-%d %H:%M}  [market] injected regime shift")
    for line in lines:
        out.append(f"  {relative(line.at, start):>10}  {line.at:%m-%d %H:%M}  {line.text}")
    out += ["", "Models (registry)"]
    for m in models:
        out.append(
            f"  {m['model_id']:14s} {m['status']:9s} created {_fmt(m['created_at'])} "
            f"dir.acc {_fmt(m['directional_accuracy'])} (persistence {_fmt(m['persistence_da'])}) "
            f"rmse {_fmt(m['rmse'])} sharpe {_fmt(m['sharpe'])}"
        )
    out += ["", "Shadow decisions"]
    out.append(f"  promoted: {', '.join(story.promoted) or 'none'}; rejected: {', '.join(story.rejected) or 'none'}")
    undecided = [m["model_id"] for m in models if m["status"] == SHADOW]
    if undecided:
        out.append(f"  still in shadow at the end (no decision yet): {', '.join(undecided)}")
    out += ["", "RL versions"]
    for v in rl_versions:
        state = f"archived {_fmt(v['archived_at'])}" if v["archived_at"] else "kept"
        out.append(
            f"  {v['rl_type']:15s} v{v['version']:<3} {_fmt(v['created_at'])} {state:16s} "
            f"states {v['states']} updates {v['updates']} epsilon {_fmt(v['epsilon'])} {v['reason'] or ''}"
        )
    win = sum(1 for t in stats.closed if t["pnl_usd"] > 0)
    final = stats.balance_curve[-1][1] if stats.balance_curve else result.config.balance_usd
    out += [
        "",
        "Trading",
        f"  trades {stats.trades_closed} closed ({dict(stats.exits)}), {win} won, "
        f"balance {result.config.balance_usd:.2f} -> {final:.2f} USD, "
        f"{stats.clamped} sizing decisions clamped",
        f"  no trade: {dict(stats.skipped)}",
        "  predictions (mean PredictionService latency): "
        + ", ".join(f"{m} {n} ({result.prediction_ms.get(m, 0):.0f} ms)" for m, n in sorted(stats.predictions.items())),
        "",
        "The story (checked from the database)",
    ]
    for step, happened, detail in story.checks():
        out.append(f"  [{'x' if happened else ' '}] {step}: {detail}" + ("" if happened else "  <- DID NOT HAPPEN"))
    out.append("")
    out.append("Wall time by stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.stages.items()))
    return out


def _html(
    result: RunResult,
    start: datetime,
    shift_at: datetime | None,
    lines: list[Milestone],
    story: Story,
    models: list[dict[str, Any]],
    rl_versions: list[dict[str, Any]],
    text: list[str],
) -> str:
    feed, stats = result.feed, result.stats

    def day(at: datetime) -> float:
        return (at - start).total_seconds() / 86_400

    markers: list[tuple[float, str, str]] = []
    if shift_at is not None:
        markers.append((day(shift_at), "shift", "#b00"))
    colours = {"drift.detected": "#e69500", "clm.retraining.started": "#06c", "model.promoted": "#080"}
    colours |= {"regime.changed": "#808", "rl.meta.reset": "#555"}
    labels = {"drift.detected": "drift", "clm.retraining.started": "retrain", "model.promoted": "promoted"}
    labels |= {"regime.changed": "regime", "rl.meta.reset": "RL reset"}
    seen: set[tuple[str, int]] = set()
    for m in lines:
        if m.topic in colours and m.at >= start and (m.topic, int(day(m.at) * 4)) not in seen:
            seen.add((m.topic, int(day(m.at) * 4)))
            markers.append((day(m.at), labels[m.topic], colours[m.topic]))
    index = feed.market_index(len(feed.timestamps), len(feed.timestamps))
    index_days = [day(from_ms(int(t))) for t in index["timestamp"]]
    charts = [
        svg.line_chart(
            "Market index (equal weight) with the run's events",
            [("index", index_days, list(index["close"]), "#333")],
            markers,
            "days from replay start",
        ),
        svg.line_chart(
            "Account balance (USD)",
            [
                (
                    "balance",
                    [day(from_ms(t)) for t, _ in stats.balance_curve],
                    [b for _, b in stats.balance_curve],
                    "#06c",
                )
            ],
            [m for m in markers if m[1] in ("shift", "promoted")],
            "days from replay start",
        ),
        svg.spans_chart("Model versions (status over simulated time)", _version_rows(models, day, stats)),
    ]
    checks = "".join(
        f"<tr><td>{'&#10004;' if ok else '&#10008; did not happen'}</td>"
        f"<td>{escape(step)}</td><td>{escape(detail)}</td></tr>"
        for step, ok, detail in story.checks()
    )
    timeline = "".join(
        f"<tr><td>{relative(m.at, start)}</td><td>{m.at:%Y-%m-%d %H:%M}</td><td>{escape(m.topic)}</td>"
        f"<td>{escape(m.text)}</td></tr>"
        for m in lines
    )
    model_rows = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(m[k]))}</td>" for k in _MODEL_COLUMNS) + "</tr>" for m in models
    )
    rl_rows = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(v[k]))}</td>" for k in _RL_COLUMNS) + "</tr>" for v in rl_versions
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Quantum Trader CLM run {result.config.seed}</title>
<style>{_STYLE}</style>
</head><body><h1>Quantum Trader CLM: main run (seed {result.config.seed})</h1>
<p>Source {escape(result.config.source)}, symbols {escape(", ".join(feed.symbols))}, timeframe {escape(feed.timeframe)};
replay from {start:%Y-%m-%d %H:%M} for {feed.steps} candles on a simulated clock.</p>
<h2>The story</h2><table><tr><th></th><th>step</th><th>detail</th></tr>{checks}</table>
{"".join(f"<div>{c}</div>" for c in charts)}
<h2>Timeline</h2><table><tr><th>T</th><th>simulated time</th><th>topic</th><th>what</th></tr>{timeline}</table>
<h2>Models</h2><table><tr>{"".join(f"<th>{c}</th>" for c in _MODEL_COLUMNS)}</tr>{model_rows}</table>
<h2>RL versions</h2><table><tr>{"".join(f"<th>{c}</th>" for c in _RL_COLUMNS)}</tr>{rl_rows}</table>
<h2>Console summary</h2><pre>{escape(chr(10).join(text))}</pre>
</body></html>"""


_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:24px;max-width:1100px}"
    "table{border-collapse:collapse;margin:8px 0 20px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;text-align:left}"
    "pre{background:#f6f6f6;padding:8px;font-size:11px;overflow:auto}"
)
_MODEL_COLUMNS = (
    "model_id",
    "status",
    "created_at",
    "promoted_at",
    "retired_at",
    "job_id",
    *METRICS,
    "persistence_da",
)
_RL_COLUMNS = ("rl_type", "version", "created_at", "archived_at", "states", "updates", "epsilon", "reason", "file")


def _version_rows(
    models: list[dict[str, Any]], day: Callable[[datetime], float], stats: Any
) -> list[tuple[str, list[tuple[float, float, str, str]]]]:
    end = day(from_ms(stats.balance_curve[-1][0])) if stats.balance_curve else 0.0
    rows: dict[str, list[tuple[float, float, str, str]]] = {}
    for m in models:
        created = day(m["created_at"]) if m["created_at"] else 0.0
        promoted = day(m["promoted_at"]) if m["promoted_at"] else None
        retired = day(m["retired_at"]) if m["retired_at"] else end
        spans = rows.setdefault(m["model_type"], [])
        if m["status"] in (SHADOW, REJECTED) or (promoted is not None and promoted > created):
            spans.append((created, promoted if promoted is not None else retired, f"v{m['version']} shadow", "#f0c36d"))
        if promoted is not None or m["status"] == ACTIVE:
            spans.append((promoted if promoted is not None else created, retired, f"v{m['version']}", "#7fbf7f"))
    return sorted(rows.items())
