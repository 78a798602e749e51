"""The DEAP toolbox: DEAP's algorithms run unchanged on it."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from deap import algorithms, tools

import gp_loss
from gp_loss.core.events import OUTCOMES
from gp_loss.fitness.stages import ProxyTraining
from gp_loss.testing.tasks import TwoSlotToy
from gp_loss.trees.space import LossGenome, LossTree
from tasks import get_task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toolbox():
    return gp_loss.make_toolbox(get_task("cls_digits", steps=60))


def test_registered_names(toolbox):
    for name in ("expr", "individual", "population", "mutate", "mate", "select", "evaluate", "map"):
        assert callable(getattr(toolbox, name)), name


def test_individuals_and_operators(toolbox):
    random.seed(0)
    population = toolbox.population(n=6)
    assert all(isinstance(ind, LossTree) for ind in population)
    (child,) = toolbox.mutate(toolbox.clone(population[0]))
    assert isinstance(child, LossTree) and child.height <= 17
    a, b = toolbox.mate(toolbox.clone(population[1]), toolbox.clone(population[2]))
    assert isinstance(a, LossTree) and isinstance(b, LossTree)
    fitness = toolbox.evaluate(
        gp_loss.parse_tree("neg(mul(y, log(y_hat)))", gp_loss.SlotSignature("softmax_onehot"))
    )
    assert isinstance(fitness, tuple) and len(fitness) == 1 and fitness[0] > 0.5
    # the same training as the proxy stage run on its own
    assert fitness[0] == ProxyTraining(toolbox.task)({"cls": "neg(mul(y, log(y_hat)))"}).fitness
    # a loss that earns no fitness (rejected: it maximises CE) gets the task's worst value
    negated = gp_loss.parse_tree("mul(y, log(y_hat))", gp_loss.SlotSignature("softmax_onehot"))
    assert toolbox.evaluate(negated) == (0.0,) and toolbox.evaluate.history[-1].outcome == "rejected"


def test_ea_simple_and_mu_plus_lambda_run_unchanged(toolbox):
    random.seed(1)
    population = toolbox.population(n=8)
    hall = tools.HallOfFame(1)
    population, log = algorithms.eaSimple(
        population, toolbox, cxpb=0.5, mutpb=0.5, ngen=2, halloffame=hall, verbose=False
    )
    assert len(population) == 8 and len(log) == 3 and len(hall) == 1
    assert all(ind.fitness.valid for ind in population)
    population, log = algorithms.eaMuPlusLambda(
        population, toolbox, mu=8, lambda_=8, cxpb=0.3, mutpb=0.6, ngen=1, verbose=False
    )
    assert len(population) == 8 and all(ind.fitness.valid for ind in population)
    assert {r.outcome for r in toolbox.evaluate.history} <= set(OUTCOMES)


def test_multi_slot_genomes():
    random.seed(2)
    toolbox = gp_loss.make_toolbox(TwoSlotToy())
    population = toolbox.population(n=4)
    assert all(isinstance(ind, LossGenome) and len(ind) == 2 for ind in population)
    population, _ = algorithms.eaSimple(population, toolbox, cxpb=0.5, mutpb=0.5, ngen=1, verbose=False)
    assert all(isinstance(ind, LossGenome) and ind.fitness.valid for ind in population)


def test_mutate_draws_the_tasks_mutations_and_takes_others_by_name(toolbox):
    assert toolbox.mutations == get_task("cls_digits").default_mutations
    assert gp_loss.make_toolbox("seg_voc", screened=False).mutations == get_task("seg_voc").default_mutations
    assert "ratio" in get_task("seg_voc").default_mutations
    ratios = gp_loss.make_toolbox(get_task("cls_digits", steps=60), mutations=["ratio"], screened=False)
    assert ratios.mutations == ("ratio",)
    random.seed(3)
    tree = gp_loss.parse_tree("neg(mul(y, log(y_hat)))", gp_loss.SlotSignature("softmax_onehot"))
    (child,) = ratios.mutate(ratios.clone(tree))
    # the ratio of sums wraps a subtree that reads the prediction: mean_nhw(S) / mean_nhw(R)
    assert "mul(mean_nhw(" in str(child) and "inv(mean_nhw(" in str(child)
    with pytest.raises(gp_loss.GpLossError, match="bad mutations 'twist'"):
        gp_loss.make_toolbox(get_task("cls_digits", steps=60), mutations=["twist"])


@pytest.mark.slow
def test_example_research_script_runs():
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "deap_research.py"), "--ngen", "1", "--pop", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "hall of fame" in done.stdout and "outcomes:" in done.stdout


def test_compile_and_pset_like_deaps_gp_examples(toolbox):
    import torch

    tree = gp_loss.parse_tree("neg(mul(y, log(y_hat)))", gp_loss.SlotSignature("softmax_onehot"))
    fn = toolbox.compile(tree)
    y_hat, y = torch.full((2, 3, 1, 1), 0.5), torch.ones(2, 3, 1, 1)
    assert torch.allclose(fn(y_hat, y), -torch.log(y_hat))
    assert toolbox.pset is toolbox.psets[0] and toolbox.pset.name.startswith("softmax_onehot")


def test_a_users_own_multiprocessing_pool_map_works(toolbox):
    import multiprocessing

    random.seed(4)
    population = toolbox.population(n=6)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        fitnesses = pool.map(toolbox.evaluate, population)
    assert fitnesses == [toolbox.evaluate(ind) for ind in population]


def test_screened_population_and_variation_hand_out_losses_that_pass_and_are_new(toolbox):
    random.seed(5)
    population = toolbox.population(n=4)
    assert len({str(ind) for ind in population}) == 4
    for individual in population:
        assert all(toolbox.screen.passing_slots([individual]))
    (child,) = toolbox.mutate(toolbox.clone(population[0]))
    assert str(child) != str(population[0]) and all(toolbox.screen.passing_slots([child]))
    results = [toolbox.evaluate.pipeline(ind) for ind in [*population, child]]
    assert {r.effective_outcome for r in results} <= {"trained", "diverged"}
    # the raw generators stay, under their own names
    raw = toolbox.raw_population(n=30)
    assert all(isinstance(ind, LossTree) for ind in raw)
    assert not all(toolbox.screen.passing_slots([ind])[0] for ind in raw)


def test_readme_deap_snippet_trains_losses_and_reaches_090():
    """The README's "From your own DEAP scripts" snippet, smaller: DEAP's eaSimple on the
    toolbox trains losses, and its hall of fame reaches 0.9 accuracy on cls_digits."""
    random.seed(0)
    toolbox = gp_loss.make_toolbox("cls_digits")
    population = toolbox.population(n=10)
    hall = tools.HallOfFame(1)
    algorithms.eaSimple(population, toolbox, cxpb=0.5, mutpb=0.4, ngen=2, halloffame=hall, verbose=False)
    trained = [r for r in toolbox.evaluate.history if r.outcome == "trained"]
    assert len(trained) >= 5
    assert hall[0].fitness.values[0] >= 0.9
