"""``show`` (leaderboard) and ``report`` (report.md + PNG plots) of a run directory."""

from __future__ import annotations

import json
import sys
from collections import Counter
from itertools import accumulate
from pathlib import Path
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.events import OUTCOMES, TRAINED
from gp_loss.results.summary import formula
from gp_loss.run.runlog import load_events, ranked, rung_of  # noqa: F401  (public here too)
from gp_loss.run.runlog import trained as trained_events
from gp_loss.trees.parse import parse_tree, shorten


def slot_formula(tree: str, signature) -> str:
    """The tree's formula, or the tree itself where its adapter is unknown (no run.json)."""
    return shorten(tree) if signature is None else formula(tree, signature)


def signatures_of(config: dict[str, Any]) -> dict[str, Any]:
    """Slot signatures of a run: from the task description it recorded, else from the registry."""
    from gp_loss.core.signature import SlotSignature
    from tasks import TASKS

    one = config.get("pipeline", {}).get("constant_one", False)
    if "task_info" in config:
        slots = config["task_info"]["slots"]
        return {name: SlotSignature(info["adapter"], info["spatial"], one) for name, info in slots.items()}
    if config["task"] not in TASKS:
        raise GpLossError(f"run uses unknown task {config['task']!r} (import its module with --import)")
    return {slot.name: slot.signature(one) for slot in TASKS[config["task"]].slots}


def fitness_metric_of(config: dict[str, Any]) -> str:
    """The proxy metric the run's fitness read (its target metric for runs from before the two
    could differ)."""
    return config.get("task_info", {}).get("fitness_metric") or metric_of(config)


def metric_of(config: dict[str, Any]) -> str:
    """The run's target metric."""
    from tasks import TASKS

    if "task_info" in config:
        return config["task_info"]["metric"]
    if config["task"] not in TASKS:
        raise GpLossError(f"run uses unknown task {config['task']!r} (import its module with --import)")
    return config.get("task_options", {}).get("metric") or TASKS[config["task"]].metrics[0]


def _best_entry(run: str | Path, key: str) -> Any:
    """One entry of the run's best.json (``None`` where the file or entry is missing or broken:
    show and report work on what is readable)."""
    path = Path(run) / "best.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get(key)
    except (json.JSONDecodeError, OSError, AttributeError):
        return None


def finalists_of(run: str | Path) -> dict[str, Any] | None:
    """The finalists' table ``finalize`` wrote into the run's best.json, if any."""
    return _best_entry(run, "finalists")


def front_of(run: str | Path) -> tuple[list[str], list[dict[str, Any]], int | None] | None:
    """A Pareto search's objectives, first front and default pick, from its best.json."""
    front = _best_entry(run, "front")
    if not front:
        return None
    return _best_entry(run, "objectives") or [], front, _best_entry(run, "pick")


def front_lines(run: str | Path, signatures: dict[str, Any]) -> list[str]:
    """``show``'s table of the first front (``--pick N`` selects a member)."""
    found = front_of(run)
    if found is None:
        return []
    names, front, chosen = found
    lines = ["", f"first front of {', '.join(names)} ({len(front)} members; --pick N selects one):", ""]
    lines.append(f"{'pick':>4}  {'id':>6}  " + "  ".join(f"{n:>10}" for n in names) + "  formula")
    for index, member in enumerate(front):
        mark = "*" if index == chosen else " "
        values = "  ".join(f"{member['objectives'][n]:>10.4g}" for n in names)
        text = "; ".join(
            f"{slot}: {slot_formula(tree, signatures.get(slot))}" for slot, tree in member["trees"].items()
        )
        lines.append(f"{index:>3}{mark}  {member['id']:>6}  {values}  {text}")
    lines.append("(* the default pick)")
    return lines


def leaderboard_json(run: str | Path, top: int = 10) -> dict[str, Any]:
    """``show --json``: the run's outcome counts, its best ``top`` trained losses and the
    finalists' table where ``finalize`` ran."""
    config, events = load_events(run)
    signatures = signatures_of(config)

    metric = metric_of(config)
    found = front_of(run)
    return {
        "finalists": finalists_of(run),
        "front": None if found is None else {"objectives": found[0], "members": found[1], "pick": found[2]},
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
                "formulas": {
                    slot: slot_formula(tree, signatures.get(slot)) for slot, tree in event["trees"].items()
                },
            }
            for rank, event in enumerate(ranked(events)[:top], 1)
        ],
    }


def leaderboard(run: str | Path, top: int = 10, finalists: bool = True) -> str:
    """The text of ``show``: the leaderboard, then the finalists' table where ``finalize`` ran."""
    config, events = load_events(run)
    signatures = signatures_of(config)

    metric = fitness_metric_of(config)
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
            f"{slot}: {slot_formula(tree, signatures.get(slot))}" for slot, tree in event["trees"].items()
        )
        steps = (event.get("rungs") or [{}])[-1].get("steps", "")
        lines.append(f"{rank:>4}  {event['id']:>6}  {event['fitness']:>10.4f}  {steps!s:>5}  {text}")
    if not ranked(events):
        lines.append("   (no trained loss yet)")
    lines += front_lines(run, signatures)
    table = finalists_of(run) if finalists else None
    if table:
        from gp_loss.results.finalists import finalists_markdown

        lines += ["", finalists_markdown(table)]
    return "\n".join(lines)


def _plots(run: Path, events: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    trained = trained_events(events)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if trained:
        explored = [e["id"] + 1 for e in trained]
        ax.scatter(explored, [e["fitness"] for e in trained], s=9, alpha=0.6, label="each trained loss")
        curve = list(accumulate((e["fitness"] for e in trained), max))
        ax.step(
            [*explored, len(events)], [*curve, curve[-1]], where="post", color="tab:red", label="best so far"
        )
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("explored losses")
    ax.set_ylabel("proxy fitness")
    ax.set_title("Fitness of each trained loss, and the best so far")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run / "best_fitness.png", dpi=110)
    plt.close(fig)
    names.append("best_fitness.png")

    counts = Counter(e["outcome"] for e in events)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    shown = [k for k in OUTCOMES if counts[k]] or list(OUTCOMES)
    ax.barh(shown[::-1], [counts[k] for k in shown[::-1]], color="tab:blue")  # one label per row
    for y, name in enumerate(shown[::-1]):
        ax.text(counts[name], y, f" {counts[name]}", va="center", fontsize=8)
    ax.set_xlabel("explored losses")
    ax.set_title("Where each explored loss ended")
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


def baseline_metrics(run: Path, config: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Proxy metrics of the task's baselines (tree and hand-written), trained once with the
    run's proxy settings and kept in the run's ``baselines.json``: the reference points of the
    front plot."""
    path = run / "baselines.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from gp_loss.fitness.stages import ProxyTraining
    from gp_loss.results.final_training import resolve_losses
    from gp_loss.run.runner import RunSettings, build_task

    settings = RunSettings.from_json(config)
    task = build_task(settings)
    proxy = ProxyTraining(task, rungs=settings.pipeline.rungs)
    found = {}
    for name in task.baseline_names():
        print(f"report: proxy-training baseline {name} for the front plot", file=sys.stderr, flush=True)
        _, losses = resolve_losses(task, name)
        result = next(iter(proxy._rungs(losses)))
        if result.outcome == TRAINED:
            found[name] = dict(result.metrics)
    from gp_loss.trees.best_json import write_json_atomic

    write_json_atomic(path, found)
    return found


def _front_plot(
    run: Path, config: dict[str, Any], events: list[dict[str, Any]], baselines: bool
) -> list[str]:
    """``front.png``: every trained loss, the first front and the baselines, on the first two
    objectives."""
    found = front_of(run)
    if found is None or len(found[0]) < 2:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gp_loss.engine.pareto import SIZE

    names, front, _ = found
    x_name, y_name = names[:2]
    signatures = signatures_of(config)

    def value(name: str, metrics: dict[str, float], trees: dict[str, str]) -> float:
        if name == SIZE:
            return float(sum(len(parse_tree(t, signatures[s])) for s, t in trees.items()))
        return float(metrics.get(name, float("nan")))

    trained = [e for e in events if e["outcome"] == TRAINED and e.get("metrics")]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(
        [value(x_name, e["metrics"], e["trees"]) for e in trained],
        [value(y_name, e["metrics"], e["trees"]) for e in trained],
        s=10, color="0.7", label="trained losses",
    )  # fmt: skip
    ordered = sorted(front, key=lambda m: m["objectives"][x_name])
    ax.plot(
        [m["objectives"][x_name] for m in ordered], [m["objectives"][y_name] for m in ordered],
        "o-", color="tab:red", label="first front",
    )  # fmt: skip
    if baselines and SIZE not in (x_name, y_name):
        for name, metrics in baseline_metrics(run, config).items():
            ax.scatter(
                [metrics.get(x_name)], [metrics.get(y_name)], marker="s", s=40, label=f"baseline {name}"
            )
    ax.set_xlabel(x_name + (" (nodes)" if x_name == SIZE else " (proxy)"))
    ax.set_ylabel(y_name + (" (nodes)" if y_name == SIZE else " (proxy)"))
    ax.set_title("Pareto front on the proxy validation split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(run / "front.png", dpi=110)
    plt.close(fig)
    return ["front.png"]


def _finalists_section(run: Path) -> list[str]:
    table = finalists_of(run)
    if not table:
        return []
    from gp_loss.results.finalists import finalists_markdown

    return ["## Finalists (is the found loss really better?)", "", finalists_markdown(table), ""]


def write_report(run: str | Path, baselines: bool = True) -> Path:
    """Write ``report.md`` and the plots into the run directory; returns the report's path.
    ``baselines``: draw the task's baselines on a Pareto search's front plot (each is proxy
    trained once and kept in ``baselines.json``)."""
    run = Path(run)
    config, events = load_events(run)
    plots = _plots(run, events) + _front_plot(run, config, events, baselines)
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
