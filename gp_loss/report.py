"""``show`` (leaderboard) and ``report`` (report.md + PNG plots) of a run directory."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from gp_loss.errors import GpLossError
from gp_loss.fitness.candidate import OUTCOMES
from gp_loss.rundir import RunDirectory
from gp_loss.summary import formula


def load_events(run: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """run.json and every complete event line of a run (read-only: nothing is repaired)."""
    directory = RunDirectory(run)
    config = directory.read_config()
    events = []
    if directory.events_path.exists():
        for line in directory.events_path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line of a run being killed
    return config, events


def _constant_one(config: dict[str, Any]) -> bool:
    """``constant_one`` of a run (kept with the pipeline; older runs kept it with the evolution)."""
    return config.get("pipeline", {}).get(
        "constant_one", config.get("evolution", {}).get("constant_one", False)
    )


def _signatures(config: dict[str, Any]) -> dict[str, Any]:
    """Slot signatures of a run: from the task description it recorded, else from the registry."""
    from gp_loss.signature import SlotSignature
    from tasks import TASKS

    one = _constant_one(config)
    if "task_info" in config:
        slots = config["task_info"]["slots"]
        return {name: SlotSignature(info["adapter"], info["spatial"], one) for name, info in slots.items()}
    if config["task"] not in TASKS:
        raise GpLossError(f"run uses unknown task {config['task']!r} (import its module with --import)")
    return {slot.name: slot.signature(one) for slot in TASKS[config["task"]].slots}


def _metric(config: dict[str, Any]) -> str:
    """The run's target metric."""
    from tasks import TASKS

    if "task_info" in config:
        return config["task_info"]["metric"]
    if config["task"] not in TASKS:
        raise GpLossError(f"run uses unknown task {config['task']!r} (import its module with --import)")
    return config.get("task_options", {}).get("metric") or TASKS[config["task"]].metrics[0]


def ranked(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Freshly trained candidates, best first (duplicates and equivalents not repeated): by the
    proxy rung reached, then fitness (scores at different rungs are not comparable)."""
    trained = [e for e in events if e["outcome"] == "trained" and e.get("fitness") is not None]
    return sorted(trained, key=lambda e: (-rung_of(e), -e["fitness"], e["id"]))


def rung_of(event: dict[str, Any]) -> int:
    """The index of the last proxy rung an event's candidate reached (0 without rungs)."""
    return max(0, len(event.get("rungs") or ()) - 1)


def finalists_of(run: str | Path) -> dict[str, Any] | None:
    """The finalists' table ``finalize`` wrote into the run's best.json, if any."""
    path = Path(run) / "best.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("finalists")
    except (json.JSONDecodeError, OSError, AttributeError):
        return None  # show and report work on what is readable


def leaderboard_json(run: str | Path, top: int = 10) -> dict[str, Any]:
    """``show --json``: the run's outcome counts, its best ``top`` trained losses and the
    finalists' table where ``finalize`` ran."""
    config, events = load_events(run)
    signatures = _signatures(config)

    metric = _metric(config)
    return {
        "finalists": finalists_of(run),
        "run": str(run),
        "task": config["task"],
        "metric": metric,
        "explored": len(events),
        "seconds": events[-1]["time"] if events else 0.0,
        "outcomes": dict(Counter(e["outcome"] for e in events)),
        "leaderboard": [
            {
                "rank": rank,
                "id": event["id"],
                "fitness": event["fitness"],
                "steps": (event.get("rungs") or [{}])[-1].get("steps"),
                "metrics": event.get("metrics", {}),
                "trees": event["trees"],
                "formulas": {slot: formula(tree, signatures[slot]) for slot, tree in event["trees"].items()},
            }
            for rank, event in enumerate(ranked(events)[:top], 1)
        ],
    }


def leaderboard(run: str | Path, top: int = 10, finalists: bool = True) -> str:
    """The text of ``show``: the leaderboard, then the finalists' table where ``finalize`` ran."""
    config, events = load_events(run)
    signatures = _signatures(config)

    metric = _metric(config)
    counts = Counter(e["outcome"] for e in events)
    spent = events[-1]["time"] if events else 0.0
    lines = [
        f"run {run}: task {config['task']}, {len(events)} explored in {spent:.0f}s",
        "outcomes: " + ", ".join(f"{k} {counts[k]}" for k in OUTCOMES if counts[k]),
        "",
        f"{'rank':>4}  {'id':>6}  {metric:>10}  {'steps':>5}  formula",
    ]
    for rank, event in enumerate(ranked(events)[:top], 1):
        text = "; ".join(
            f"{slot}: {formula(tree, signatures[slot])}" for slot, tree in event["trees"].items()
        )
        steps = (event.get("rungs") or [{}])[-1].get("steps", "")
        lines.append(f"{rank:>4}  {event['id']:>6}  {event['fitness']:>10.4f}  {steps!s:>5}  {text}")
    if not ranked(events):
        lines.append("   (no trained loss yet)")
    table = finalists_of(run) if finalists else None
    if table:
        from gp_loss.finalists import finalists_markdown

        lines += ["", finalists_markdown(table)]
    return "\n".join(lines)


def _plots(run: Path, events: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    best, curve = None, []
    for event in events:
        if event["outcome"] == "trained" and event.get("fitness") is not None:
            best = event["fitness"] if best is None else max(best, event["fitness"])
        curve.append(best if best is not None else float("nan"))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.step(range(1, len(curve) + 1), curve, where="post")
    ax.set_xlabel("explored losses")
    ax.set_ylabel("best fitness")
    ax.set_title("Best fitness against explored losses")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run / "best_fitness.png", dpi=110)
    plt.close(fig)
    names.append("best_fitness.png")

    counts = Counter(e["outcome"] for e in events)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(OUTCOMES), [counts[k] for k in OUTCOMES], color="tab:blue")
    ax.set_ylabel("explored losses")
    ax.set_title("Outcome breakdown")
    fig.tight_layout()
    fig.savefig(run / "outcomes.png", dpi=110)
    plt.close(fig)
    names.append("outcomes.png")

    stages: Counter[str] = Counter()
    for event in events:
        for stage, seconds in (event.get("seconds") or {}).items():
            stages[stage] += seconds
    fig, ax = plt.subplots(figsize=(6, 3.5))
    order = [s for s in ("dedup", "validity", "gec", "lrp", "proxy") if s in stages] + sorted(
        set(stages) - {"dedup", "validity", "gec", "lrp", "proxy"}
    )
    ax.bar(order, [stages[s] for s in order], color="tab:orange")
    ax.set_ylabel("seconds (total)")
    ax.set_title("Time spent per stage")
    fig.tight_layout()
    fig.savefig(run / "stage_time.png", dpi=110)
    plt.close(fig)
    names.append("stage_time.png")
    return names


def _finalists_section(run: Path) -> list[str]:
    table = finalists_of(run)
    if not table:
        return []
    from gp_loss.finalists import finalists_markdown

    return ["## Finalists (is the found loss really better?)", "", finalists_markdown(table), ""]


def write_report(run: str | Path) -> Path:
    """Write ``report.md`` and the plots into the run directory; returns the report's path."""
    run = Path(run)
    config, events = load_events(run)
    plots = _plots(run, events)
    stages: Counter[str] = Counter()
    for event in events:
        stages.update(event.get("seconds") or {})
    text = [
        f"# gp-loss report: {run.name}",
        "",
        f"task `{config['task']}`, seed {config.get('evolution', {}).get('seed')}, "
        f"created {config.get('created')}",
        "",
        "```",
        leaderboard(run, finalists=False),
        "```",
        "",
        *_finalists_section(run),
        "## Time per stage (seconds)",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *(f"| {k} | {v:.1f} |" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])),
        "",
        *(f"![{name}]({name})" for name in plots),
        "",
    ]
    path = run / "report.md"
    path.write_text("\n".join(text), encoding="utf-8")
    return path
