"""Trees as formulas: sympy expressions, simplified LaTeX and a one-line text form."""

from __future__ import annotations

from collections.abc import Sequence

import sympy
from deap import gp

from gp_loss.adapters import ADAPTERS, Adapter
from gp_loss.trees.space import CONSTANT_ONE
from primitives import PRIMITIVES


def symbol(name: str, adapter: type[Adapter] | None = None) -> sympy.Symbol:
    """The sympy symbol of input ``name`` as ``adapter`` (default: the first adapter with that
    input) declares it: name and assumptions, which keep simplification true to the safe
    primitives."""
    for each in [adapter] if adapter is not None else list(ADAPTERS.values()):
        if name in each.symbols:
            printed, assumptions = each.symbols[name]
            return sympy.Symbol(printed, **assumptions)
    return sympy.Symbol(name)


def _text_names(adapter: type[Adapter] | None) -> dict[str, str]:
    """Printed symbol -> input name, where they differ (``\\hat{y}`` -> ``y_hat``)."""
    return {
        printed: name
        for each in ([adapter] if adapter is not None else ADAPTERS.values())
        for name, (printed, _) in each.symbols.items()
        if printed != name
    }


#: Trees larger than this are not passed to ``sympy.simplify`` (it can take minutes).
SIMPLIFY_MAX_NODES = 60


def weight_of(nodes: Sequence) -> str:
    """A parsed tree's weight (``1``, ``C``, ``10``); ``1`` for a plain node list."""
    return getattr(nodes, "weight", "1")


def _weight_expr(nodes: Sequence) -> sympy.Expr:
    weight = weight_of(nodes)
    return sympy.Symbol("C", positive=True, integer=True) if weight == "C" else sympy.Integer(weight)


def to_sympy(nodes: Sequence, adapter: type[Adapter] | None = None) -> sympy.Expr:
    """The sympy expression of a tree in DEAP prefix order (iterative: any depth), times its
    weight; inputs print as ``adapter`` declares them."""
    return _weight_expr(nodes) * _tree_sympy(nodes, adapter)


def _tree_sympy(nodes: Sequence, adapter: type[Adapter] | None = None) -> sympy.Expr:
    stack: list[sympy.Expr] = []
    for node in reversed(nodes):
        if isinstance(node, gp.Terminal):
            stack.append(sympy.Integer(1) if node.value == CONSTANT_ONE else symbol(node.value, adapter))
        else:
            args = [stack.pop() for _ in range(node.arity)]
            stack.append(PRIMITIVES[node.name].sympy_fn(*args))
    (expr,) = stack
    return expr


def simplified(nodes: Sequence, adapter: type[Adapter] | None = None) -> sympy.Expr:
    """The expression, simplified when the tree is small enough."""
    expr = to_sympy(nodes, adapter)
    if len(nodes) <= SIMPLIFY_MAX_NODES:
        expr = sympy.simplify(expr)
    return expr


def template_latex(nodes: Sequence, adapter: type[Adapter] | None = None) -> str:
    """LaTeX straight from the primitives' templates, no sympy (fast, for any size)."""
    stack: list[str] = []
    for node in reversed(nodes):
        if isinstance(node, gp.Terminal):
            stack.append("1" if node.value == CONSTANT_ONE else sympy.latex(symbol(node.value, adapter)))
        else:
            args = [stack.pop() for _ in range(node.arity)]
            stack.append(PRIMITIVES[node.name].latex.format(*args))
    (text,) = stack
    weight = weight_of(nodes)
    return text if weight == "1" else f"{weight} \\left({text}\\right)"


def to_latex(nodes: Sequence, adapter: type[Adapter] | None = None) -> str:
    """LaTeX of the per-element loss (the loss is its mean over valid elements).

    Small trees are sympy-simplified; large ones use the primitives' templates.
    """
    if len(nodes) > SIMPLIFY_MAX_NODES:
        return template_latex(nodes, adapter)
    return sympy.latex(simplified(nodes, adapter))


def to_text(nodes: Sequence, adapter: type[Adapter] | None = None) -> str:
    """A short plain-text formula such as ``-y*log(y_hat)``."""
    text = sympy.sstr(simplified(nodes, adapter))
    for sym, name in _text_names(adapter).items():
        text = text.replace(sym, name)
    return text


def to_words(nodes: Sequence, adapter: type[Adapter] | None = None) -> str:
    """The tree in words, from the primitives' word templates and the adapter's words for its
    inputs (``minus (the one-hot target times the signed log of |the predicted class
    probability|)``): a reader need not know the primitives' names."""
    inputs = dict(adapter.words) if adapter is not None else {}
    stack: list[str] = []
    for node in reversed(nodes):
        if isinstance(node, gp.Terminal):
            stack.append("1" if node.value == CONSTANT_ONE else inputs.get(node.value, node.value))
        else:
            args = [stack.pop() for _ in range(node.arity)]
            stack.append(PRIMITIVES[node.name].words.format(*args))
    (text,) = stack
    weight = weight_of(nodes)
    channels = "the number of channels (classes)" if weight == "C" else weight
    return text if weight == "1" else f"{channels} times ({text})"
