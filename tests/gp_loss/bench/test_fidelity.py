"""``bench fidelity``: proxy levels, final retraining and the rank correlations between them."""

from __future__ import annotations

import pytest

from gp_loss.bench import fidelity
from gp_loss.core.errors import GpLossError
from gp_loss.fitness.rungs import rung_steps
from gp_loss.results.final_training import SeedRun, resolve_losses, train_seed
from tasks import get_task


def _entry(label: str, proxy: list[float | None], final: float | None) -> fidelity.PanelLoss:
    finals = [SeedRun(0, None if final is None else {"accuracy": final}, None if final else "diverged", 0.0)]
    return fidelity.PanelLoss(label, "given", proxy=proxy, seconds=[1.0] * len(proxy), finals=finals)


def test_correlations_on_hand_made_panels():
    reversed_ranks = [_entry("a", [0.1], 0.3), _entry("b", [0.2], 0.2), _entry("c", [0.3], 0.1)]
    (row,) = fidelity.Fidelity("t", "accuracy", [10], reversed_ranks, 1, 1, 0.0).correlations()
    assert row["kendall_tau"] == pytest.approx(-1.0) and row["spearman_rho"] == pytest.approx(-1.0)
    # one discordant pair of six: tau = (5 - 1) / 6; a diverged proxy and final both count as 0
    panel = [
        _entry("a", [0.1], 0.1),
        _entry("b", [0.3], 0.2),
        _entry("c", [0.2], 0.3),
        _entry("d", [None], None),
    ]
    panel += [_entry("e", [0.4], 0.4)]
    (row,) = fidelity.Fidelity("t", "accuracy", [10], panel, 1, 1, 0.0).correlations()
    # pairs: 10, of which (b, c) is the only discordant one
    assert row["kendall_tau"] == pytest.approx((9 - 1) / 10)


@pytest.mark.slow
def test_cls_digits_panel_is_measured_as_the_search_trains(tmp_path):
    options = {"steps": 40}
    result = fidelity.run(
        "cls_digits", options, levels=[0.5, 1.0], n_random=2, seeds=1, jobs=2, versus=[{"steps": 20}]
    )
    assert result.steps == [20, 40] and result.versus_steps == {"steps=20": [10, 20]}
    kinds = [e.kind for e in result.panel]
    assert kinds == ["baseline"] * len(get_task("cls_digits").baseline_names()) + ["random"] * 2
    task = get_task("cls_digits", **options)
    ce = next(e for e in result.panel if e.label == "cross_entropy")
    losses = resolve_losses(task, "cross_entropy")[1]
    # the last level is the search's proxy fitness, the final column the train command's number
    assert ce.proxy[-1] == pytest.approx(task.proxy_train(losses).metrics["accuracy"])
    assert ce.finals[0].metrics == train_seed(task, losses, 0).metrics
    # the other proxy trains as a search with its settings would; the finals stay the task's own
    shorter = get_task("cls_digits", steps=20)
    assert ce.versus["steps=20"]["proxy"][-1] == pytest.approx(
        shorter.proxy_train(losses).metrics["accuracy"]
    )
    assert all(e.seconds[0] <= e.seconds[1] for e in result.panel)
    rows = result.correlations()
    assert [(r["proxy"], r["steps"]) for r in rows] == [
        ("default", 20),
        ("default", 40),
        ("steps=20", 10),
        ("steps=20", 20),
    ]
    text = result.markdown()
    assert "| cross_entropy | baseline |" in text and "Kendall tau" in text
    assert "steps=20 @ 10 | steps=20 @ 20 | final" in text and "| steps=20 | 20 |" in text
    with pytest.raises(GpLossError, match="fractions of the proxy steps"):
        rung_steps(task, [0.5, 2.0])
