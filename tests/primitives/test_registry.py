"""The one registry class every registry is (primitives, adapters, tasks, baselines, backends)."""

from __future__ import annotations

import pytest

from gp_loss.adapters import ADAPTERS
from gp_loss.core.baselines import BASELINES
from gp_loss.core.errors import GpLossError
from gp_loss.execution.backends import BACKENDS
from primitives import PRIMITIVES
from primitives.registry import Registry
from tasks import TASKS


def test_a_name_holds_one_thing():
    registry: Registry[object] = Registry("widget")
    first = object()
    assert registry.register("a", first) is first
    assert registry.register("a", first) is first  # the same thing again: a module imported twice
    with pytest.raises(ValueError, match="widget 'a' registered twice"):
        registry.register("a", object())
    with pytest.raises(ValueError, match="a widget needs a name"):
        registry.register("", object())
    assert registry.lookup("a") is first and "a" in registry and list(registry) == ["a"]


def test_an_unknown_name_lists_the_known_ones_with_the_registry_s_error():
    registry: Registry[int] = Registry("widget", GpLossError)
    registry.register("b", 2)
    registry.register("a", 1)
    with pytest.raises(GpLossError, match=r"^unknown widget 'c'; known: a, b$"):
        registry.lookup("c")
    with pytest.raises(KeyError, match="none registered"):
        Registry("gadget").lookup("x")


@pytest.mark.parametrize("registry", [PRIMITIVES, ADAPTERS, TASKS, BASELINES, BACKENDS])
def test_every_registry_of_the_project_is_one(registry):
    assert isinstance(registry, Registry) and len(registry) > 0
