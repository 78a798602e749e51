"""The operator library: registry, metadata and safe numerics."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
import sympy
import torch
from hypothesis import given, settings

import primitives
from primitives import EPS, PRIMITIVES, get_primitive
from primitives._registry import register

EXTREMES = [0.0, 1e-30, -1e-30, 1e30, -1e30, 1.0, -1.0, 1e-12, -1e-12, 3.0, -7.5, 88.0, 1e15]


def test_fourteen_operators_with_metadata():
    assert primitives.ELEMENTWISE == (
        "add",
        "mul",
        "neg",
        "abs",
        "inv",
        "log",
        "exp",
        "tanh",
        "square",
        "sqrt",
    )
    assert primitives.AGGREGATION == ("mean_nhw", "mean_c", "maxpool3", "minpool3")
    for prim in PRIMITIVES.values():
        assert prim.arity in (1, 2)
        assert prim.spatial == (prim.name in ("maxpool3", "minpool3"))
        symbols = sympy.symbols(f"a0:{prim.arity}")
        assert isinstance(prim.sympy_fn(*symbols), sympy.Expr)
        assert prim.latex.format(*(f"x{i}" for i in range(prim.arity)))


def test_one_named_eps():
    assert EPS == 1e-12
    assert torch.allclose(PRIMITIVES["inv"].fn(torch.tensor([0.0, 1e-30])), torch.tensor([0.0, 1e12]))


def test_duplicate_name_refused_and_unknown_lists_names():
    with pytest.raises(ValueError, match="twice"):
        register("add", 2, sympy_fn=lambda x, y: x + y, latex="", kind="elementwise")(lambda x, y: x)
    with pytest.raises(KeyError, match="known: abs, add"):
        get_primitive("div")


def _check_finite(name: str, values: list[float], shape=(1, -1, 1, 1)) -> None:
    prim = PRIMITIVES[name]
    x = torch.tensor(values, dtype=torch.float32).reshape(shape).requires_grad_(True)
    y = torch.tensor(list(reversed(values)), dtype=torch.float32).reshape(shape).requires_grad_(True)
    args = (x, y)[: prim.arity]
    out = prim.fn(*args)
    assert torch.isfinite(out).all(), f"{name} not finite on {values}"
    grads = torch.autograd.grad(out.sum(), args, allow_unused=True)
    for g in grads:
        assert g is None or torch.isfinite(g).all(), f"{name} gradient not finite on {values}"


@pytest.mark.parametrize("name", list(PRIMITIVES))
def test_finite_on_extremes(name):
    _check_finite(name, EXTREMES)


_BOUND = float(torch.tensor(1e30, dtype=torch.float32))
finite_floats = st.floats(min_value=-_BOUND, max_value=_BOUND, allow_nan=False, width=32)


@pytest.mark.parametrize("name", list(PRIMITIVES))
@settings(max_examples=60, deadline=None)
@given(values=st.lists(finite_floats, min_size=9, max_size=9))
def test_finite_property(name, values):
    _check_finite(name, values, shape=(1, 1, 3, 3))


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("add", lambda x, y: x + y),
        ("mul", lambda x, y: x * y),
        ("neg", lambda x: -x),
        ("abs", abs),
        ("inv", lambda x: 1 / x),
        ("log", lambda x: math.log(abs(x)) * (1 if x > 0 else -1)),
        ("exp", math.exp),
        ("tanh", math.tanh),
        ("square", lambda x: x * x),
        ("sqrt", lambda x: math.copysign(math.sqrt(abs(x)), x)),
    ],
)
def test_elementwise_formula_on_ordinary_values(name, reference):
    values = [0.3, -2.5, 4.0, -0.7, 1.9]
    prim = PRIMITIVES[name]
    args = [torch.tensor(values), torch.tensor(values[::-1])][: prim.arity]
    expected = [reference(*v) for v in zip(*[a.tolist() for a in args])]
    assert torch.allclose(prim.fn(*args), torch.tensor(expected), rtol=1e-5)


def test_safe_at_zero():
    zero = torch.zeros(3, requires_grad=True)
    for name in ("inv", "log", "sqrt"):
        out = PRIMITIVES[name].fn(zero)
        assert torch.equal(out, torch.zeros(3)), name
        (grad,) = torch.autograd.grad(out.sum(), zero)
        assert torch.isfinite(grad).all(), name
    assert torch.isfinite(PRIMITIVES["exp"].fn(torch.tensor([1e4]))).all()


def test_aggregations_keep_dims():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert PRIMITIVES["mean_nhw"].fn(x).shape == (1, 3, 1, 1)
    assert torch.allclose(PRIMITIVES["mean_nhw"].fn(x).flatten(), x.mean(dim=(0, 2, 3)))
    assert PRIMITIVES["mean_c"].fn(x).shape == (2, 1, 4, 4)
    assert torch.allclose(PRIMITIVES["mean_c"].fn(x), x.mean(dim=1, keepdim=True))
    pooled = PRIMITIVES["maxpool3"].fn(x)
    assert pooled.shape == x.shape
    assert pooled[0, 0, 1, 1] == x[0, 0, :3, :3].max()
    assert PRIMITIVES["minpool3"].fn(x)[0, 0, 1, 1] == x[0, 0, :3, :3].min()
    assert PRIMITIVES["minpool3"].fn(x)[0, 0, 0, 0] == x[0, 0, :2, :2].min()  # padding never wins
