"""``report RUN --html``: one self-contained page (no network, no script): the search's funnel,
every trained loss's fitness over time with the best so far, the top losses as formulas and
trees, the finalists' verdict, and the run's settings and provenance. It reads on a phone and
opens from an e-mail attachment: plots are inline SVG, formulas are rendered by matplotlib's
mathtext into SVG paths (no fonts), and the page refers to no URL."""

from __future__ import annotations

import html
import io
import json
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

from gp_loss.results.report import finalists_of, leaderboard_json, metric_of, signatures_of
from gp_loss.run.runlog import funnel, load_events
from gp_loss.run.runlog import trained as trained_events
from gp_loss.trees.parse import parse_tree

_STYLE = """
body{font:16px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #ddd}
.meta{color:#555}.wrap{overflow-x:auto}table{border-collapse:collapse;font-size:.9rem}
td,th{border-bottom:1px solid #e3e3e3;padding:.3rem .5rem;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
svg{max-width:100%;height:auto;display:block}code,pre{font-size:.8rem;word-break:break-all;white-space:pre-wrap}
.formula svg{max-width:100%;height:auto;display:inline-block}.verdict{font-weight:600}
figure{margin:0}figcaption{color:#555;font-size:.85rem}
.stage{display:flex;align-items:center;gap:.5rem;margin:.25rem 0}.stage .name{flex:0 0 6.5rem}
.stage .track{flex:1 1 auto;background:#e8eef8;height:1.2rem}.stage .bar{display:block;height:100%;background:#3b7dd8}
.stage .count{flex:0 0 6.5rem;font-variant-numeric:tabular-nums;font-size:.9rem}
.formula svg{vertical-align:middle}
"""


def write_html_report(run: str | Path, top: int = 10) -> Path:
    """Write ``report.html`` into the run directory; returns its path."""
    run = Path(run)
    config, events = load_events(run)
    board = leaderboard_json(run, top)
    metric = metric_of(config)
    parts = [
        f"<h1>gp-loss search: {_e(run.name)}</h1>",
        f"<p class=meta>task <b>{_e(config['task'])}</b>, metric {_e(metric)}, "
        f"{board['explored']} losses explored in {board['seconds']:.0f} s, created {_e(config.get('created', '?'))}</p>",
        "<h2>Funnel</h2>",
        _funnel_html(funnel(events)),
        "<h2>Fitness over time</h2>",
        _scatter_svg(events, metric),
        f"<h2>Top {min(top, len(board['leaderboard']))} losses</h2>",
        _top_losses(board, config),
        *_finalists(run),
        "<h2>Settings and provenance</h2>",
        _settings(config),
    ]
    page = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>gp-loss: {_e(run.name)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )
    path = run / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _e(text: Any) -> str:
    return html.escape(str(text))


def _funnel_html(rows: list[tuple[str, int, str]]) -> str:
    """One bar per stage, as wide as its share of the explored losses (HTML, so that its text
    keeps its size on a phone)."""
    total = max(rows[0][1], 1)
    bars = "".join(
        f'<div class=stage title="{_e(what)}"><span class=name>{_e(name)}</span>'
        f'<span class=track><span class=bar style="width:{max(0.5, 100 * count / total):.1f}%"></span></span>'
        f"<span class=count>{count} ({100 * count / total:.0f}%)</span></div>"
        for name, count, what in rows
    )
    notes = "".join(f"<li><b>{_e(n)}</b>: {_e(w)}</li>" for n, _, w in rows)
    return f'<figure class=funnel role="img" aria-label="search funnel">{bars}<figcaption><ul>{notes}</ul></figcaption></figure>'


def _scatter_svg(events: list[dict[str, Any]], metric: str) -> str:
    """Each trained loss's proxy fitness against the search's time, and the best-so-far line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = trained_events(events)
    fig, ax = plt.subplots(figsize=(5.6, 3.3))
    if trained:
        minutes = [e["time"] / 60 for e in trained]
        ax.scatter(
            minutes, [e["fitness"] for e in trained], s=9, alpha=0.6, label="trained loss", color="#3b7dd8"
        )
        curve = list(accumulate((e["fitness"] for e in trained), max))
        end = max(minutes[-1], events[-1]["time"] / 60)
        ax.step([*minutes, end], [*curve, curve[-1]], where="post", color="#d33", label="best so far")
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no loss trained yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("search time (minutes)")
    ax.set_ylabel(f"proxy {metric}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    svg = _svg(fig)
    plt.close(fig)
    return f'<figure class=scatter role="img" aria-label="fitness over time">{svg}</figure>'


def _svg(fig_or_writer, **kw: Any) -> str:
    """A matplotlib figure as inline SVG: no XML header, no metadata, no namespace URLs."""
    buffer = io.StringIO()
    if callable(fig_or_writer):
        fig_or_writer(buffer)
    else:
        fig_or_writer.savefig(buffer, format="svg", **kw)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)


def formula_svg(latex: str) -> str | None:
    """A LaTeX formula rendered by mathtext as SVG paths (``None`` where mathtext cannot read it)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import mathtext, rc_context

    try:
        with rc_context({"svg.fonttype": "path"}):
            svg = _svg(lambda out: mathtext.math_to_image(f"${latex}$", out, format="svg", dpi=100))
    except (ValueError, RuntimeError):
        return None
    return f"<span class=formula>{svg}</span>"


def _top_losses(board: dict[str, Any], config: dict[str, Any]) -> str:
    if not board["leaderboard"]:
        return "<p>No loss was trained yet.</p>"
    signatures = signatures_of(config)
    rows = []
    for entry in board["leaderboard"]:
        cells = []
        for slot, tree in entry["trees"].items():
            rendered = _latex_svg(tree, signatures.get(slot))
            text = f"<code>{_e(entry['formulas'][slot])}</code>"
            cells.append(
                f"<div><b>{_e(slot)}</b>: L = mean[{rendered or text}]</div>"
                f"<details><summary>tree</summary><pre>{_e(tree)}</pre></details>"
            )
        rows.append(
            f"<tr><td class=n>{entry['rank']}</td><td class=n>{entry['id']}</td>"
            f"<td class=n>{entry['fitness']:.4f}</td><td>{''.join(cells)}</td></tr>"
        )
    head = f"<tr><th class=n>rank</th><th class=n>id</th><th class=n>{_e(board['metric'])}</th><th>loss</th></tr>"
    return f"<div class=wrap><table class=losses>{head}{''.join(rows)}</table></div>"


def _latex_svg(tree: str, signature) -> str | None:
    if signature is None:
        return None
    from gp_loss.results.summary import FORMULA_MAX_NODES
    from gp_loss.trees.symbolic import to_latex

    nodes = parse_tree(tree, signature)
    if len(nodes) > FORMULA_MAX_NODES:
        return None
    return formula_svg(to_latex(nodes, signature.adapter_class))


def _finalists(run: Path) -> list[str]:
    table = finalists_of(run)
    if not table:
        return ["<h2>Finalists</h2><p>Not retrained yet: <code>finalize RUN</code> retrains the top losses "
                "beside the reference baselines over seeds.</p>"]  # fmt: skip
    from gp_loss.results.finalists import finalists_markdown

    return ["<h2>Finalists (is the found loss really better?)</h2>", markdown_html(finalists_markdown(table))]


def markdown_html(text: str) -> str:
    """The Markdown the finalists' table is written in (pipe tables, bullets, bold lines, code
    spans) as HTML."""
    out: list[str] = []
    table: list[list[str]] = []

    def inline(cell: str) -> str:
        cell = re.sub(r"`([^`]*)`", lambda m: f"\x00{m.group(1)}\x01", cell)
        cell = _e(cell).replace("\x00", "<code>").replace("\x01", "</code>")
        return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", cell)

    def flush() -> None:
        if table:
            head, *body = table
            cells = "".join(f"<th>{inline(c)}</th>" for c in head)
            rows = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in body)
            out.append(f"<div class=wrap><table class=finalists><tr>{cells}</tr>{rows}</table></div>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                table.append(cells)
            continue
        flush()
        if line.startswith("- "):
            out.append(f"<div>&bull; {inline(line[2:])}</div>")
        elif line.startswith("**"):
            out.append(f"<p class=verdict>{inline(line)}</p>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "".join(out)


def _settings(config: dict[str, Any]) -> str:
    keep = {k: v for k, v in config.items() if k not in ("task_info",)}
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td><code>{_e(json.dumps(v) if not isinstance(v, str) else v)}</code></td></tr>"
        for k, v in keep.items()
    )
    return f"<div class=wrap><table class=settings>{rows}</table></div>"


__all__ = ["formula_svg", "markdown_html", "write_html_report"]
