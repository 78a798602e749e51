"""Trees as formulas: sympy expressions, simplified LaTeX and a one-line text form."""

from __future__ import annotations

from collections.abc import Sequence

import sympy
from deap import gp

from gp_loss.space import CONSTANT_ONE
from primitives import PRIMITIVES

#: How inputs print in formulas.
#: Their ranges are declared so that simplification stays true to the safe primitives: softmax
#: probabilities, unions and enclosing areas are positive; a one-hot target and an intersection
#: can be 0 (where ``inv`` gives 0, not infinity).
SYMBOLS: dict[str, sympy.Symbol] = {
    "y_hat": sympy.Symbol(r"\hat{y}", positive=True),
    "y": sympy.Symbol("y", nonnegative=True),
    "inter": sympy.Symbol("I", nonnegative=True),
    "union": sympy.Symbol("U", positive=True),
    "enclose": sympy.Symbol("E", positive=True),
}
_TEXT_NAMES = {r"\hat{y}": "y_hat"}

#: Trees larger than this are not passed to ``sympy.simplify`` (it can take minutes).
SIMPLIFY_MAX_NODES = 60


def to_sympy(nodes: Sequence) -> sympy.Expr:
    """The sympy expression of a tree in DEAP prefix order (iterative: any depth)."""
    stack: list[sympy.Expr] = []
    for node in reversed(nodes):
        if isinstance(node, gp.Terminal):
            stack.append(sympy.Integer(1) if node.value == CONSTANT_ONE else SYMBOLS[node.value])
        else:
            args = [stack.pop() for _ in range(node.arity)]
            stack.append(PRIMITIVES[node.name].sympy_fn(*args))
    (expr,) = stack
    return expr


def simplified(nodes: Sequence) -> sympy.Expr:
    """The expression, simplified when the tree is small enough."""
    expr = to_sympy(nodes)
    if len(nodes) <= SIMPLIFY_MAX_NODES:
        expr = sympy.simplify(expr)
    return expr


def template_latex(nodes: Sequence) -> str:
    """LaTeX straight from the primitives' templates, no sympy (fast, for any size)."""
    stack: list[str] = []
    for node in reversed(nodes):
        if isinstance(node, gp.Terminal):
            stack.append("1" if node.value == CONSTANT_ONE else sympy.latex(SYMBOLS[node.value]))
        else:
            args = [stack.pop() for _ in range(node.arity)]
            stack.append(PRIMITIVES[node.name].latex.format(*args))
    (text,) = stack
    return text


def to_latex(nodes: Sequence) -> str:
    """LaTeX of the per-element loss (the loss is its mean over valid elements).

    Small trees are sympy-simplified; large ones use the primitives' templates.
    """
    if len(nodes) > SIMPLIFY_MAX_NODES:
        return template_latex(nodes)
    return sympy.latex(simplified(nodes))


def to_text(nodes: Sequence) -> str:
    """A short plain-text formula such as ``-y*log(y_hat)``."""
    text = sympy.sstr(simplified(nodes))
    for sym, name in _TEXT_NAMES.items():
        text = text.replace(sym, name)
    return text
