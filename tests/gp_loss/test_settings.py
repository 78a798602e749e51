"""Each search setting is declared once (gp_loss/core/settings.py): evolve's flags and
gp_loss.search's keywords come from the declarations, and each group checks its own values."""

from __future__ import annotations

import dataclasses

import pytest

from gp_loss.commands.evolve import evolve_cmd
from gp_loss.core.errors import GpLossError
from gp_loss.core.option import declared, from_flags, keywords
from gp_loss.core.settings import GROUPS, EvolutionConfig, ExecutionOptions, PipelineOptions, TrackingOptions


def test_every_declared_setting_is_a_flag_of_evolve_with_its_help():
    params = {p.name: p for p in evolve_cmd.params}
    for group in GROUPS:
        for item in declared(group):
            assert item.param in params, item.flag
            assert params[item.param].help == item.help
            assert item.flag in params[item.param].opts


def test_every_declared_setting_is_a_search_keyword():
    from gp_loss.api import settings_from_keywords
    from gp_loss.engine.evolution import Limits
    from tasks import get_task

    task = get_task("cls_digits")

    made = settings_from_keywords(task, Limits(max_explored=1), {"population": 7, "gec": False})
    assert made.evolution.population_size == 7 and made.pipeline.gec is False
    assert set(keywords(GROUPS)) >= {
        "population",
        "tournament",
        "crossover",
        "lrp_protocol",
        "workers",
        "mlflow",
    }
    with pytest.raises(GpLossError, match=r"unknown search setting 'populaton'; known: .*population"):
        settings_from_keywords(task, Limits(max_explored=1), {"populaton": 7})


def test_flags_left_alone_keep_the_declared_defaults():
    import click

    with click.Context(evolve_cmd) as ctx:
        values = {p.name: p.get_default(ctx) for p in evolve_cmd.params}
    assert PipelineOptions(**from_flags(PipelineOptions, values)) == PipelineOptions()
    assert from_flags(ExecutionOptions, values) == {}  # a resume keeps what run.json says
    assert TrackingOptions(**from_flags(TrackingOptions, values)) == TrackingOptions()
    evolution = from_flags(EvolutionConfig, values)
    assert "population_size" not in evolution  # the task's default population applies
    assert EvolutionConfig(**evolution) == dataclasses.replace(EvolutionConfig(), objectives=())
    turned = from_flags(PipelineOptions, {**values, "no_gec": True, "rungs": "0.5,1", "constant_one": True})
    assert turned == {
        **from_flags(PipelineOptions, values),
        "gec": False,
        "rungs": (0.5, 1.0),
        "constant_one": True,
    }


@pytest.mark.parametrize(
    ("group", "change", "message"),
    [
        (EvolutionConfig, {"population_size": 1}, "--population must be at least 2"),
        (EvolutionConfig, {"crossover_prob": 2.0}, "--crossover must be a probability in [0, 1], got 2.0"),
        (PipelineOptions, {"promote": 0.0}, "--promote must be a share in (0, 1], got 0.0"),
        (
            PipelineOptions,
            {"lrp_protocol": "strict"},
            "unknown --lrp protocol 'strict'; known: shared, paper",
        ),
        (ExecutionOptions, {"workers": 0}, "--workers must be at least 1"),
        (ExecutionOptions, {"eval_timeout": -1.0}, "--eval-timeout must be positive"),
    ],
)
def test_each_group_checks_its_own_values(group, change, message):
    with pytest.raises(GpLossError) as caught:
        dataclasses.replace(group(), **change).validate()
    assert str(caught.value) == message
