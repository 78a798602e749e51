"""Selection policies outside the evolution loop (gp_loss/engine/selection.py), and the stage list."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gp_loss.core.errors import GpLossError
from gp_loss.engine.selection import ParetoSelection, RankSelection, selection_for


@dataclass
class _Member:
    rank: tuple[int, float]
    point: tuple[int, list[float]]


def _population() -> list[_Member]:
    return [
        _Member((0, 0.5), (0, [0.5, -3.0])),
        _Member((1, 0.2), (1, [0.2, -9.0])),
        _Member((0, 0.9), (0, [0.9, -1.0])),
    ]


def test_rank_selection_prefers_the_higher_rung_then_the_fitness():
    population = _population()
    assert RankSelection().winner(population, population) is population[1]
    assert RankSelection().winner(population[::2], population) is population[2]
    assert RankSelection("oldest").leaver(population) == 0
    assert RankSelection("worst").leaver(population) == 0  # rung 0, fitness 0.5
    with pytest.raises(GpLossError, match="unknown --replace 'newest'"):
        RankSelection("newest")


def test_pareto_selection_is_chosen_for_several_objectives():
    assert isinstance(selection_for(("accuracy", "size"), "oldest"), ParetoSelection)
    assert isinstance(selection_for((), "worst"), RankSelection)


def test_the_pipeline_lists_its_stages_in_order_and_compose_nests_them():
    from gp_loss.core.settings import PipelineOptions
    from gp_loss.fitness.pipeline import FitnessPipeline
    from gp_loss.fitness.stages import GradientEquivalence, LossRejection, ProxyTraining, compose
    from gp_loss.testing.tasks import TwoSlotToy

    task = TwoSlotToy()
    pipeline = FitnessPipeline(task, PipelineOptions(constant_one=True))
    assert [s.name for s in pipeline.stages] == ["dedup", "validity", "gec", "lrp", "proxy"]
    assert [s.name for s in pipeline.screening] == ["dedup", "validity", "gec"]
    assert all(s.context.space.constant_one for s in pipeline.stages)
    nested = compose(task, GradientEquivalence, LossRejection)
    assert isinstance(nested, GradientEquivalence) and isinstance(nested.inner, LossRejection)
    assert isinstance(nested.inner.inner, ProxyTraining) and nested.task is task
