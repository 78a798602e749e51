"""Safe parsing of tree strings against a primitive set (never ``eval``).

DEAP's ``PrimitiveTree.from_string`` evaluates tokens it does not know; a ``best.json`` from
anywhere must be safe to load, so we tokenise and check every name and arity ourselves.
"""

from __future__ import annotations

import re

from deap import gp

from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.space import WEIGHTS, LossTree, primitive_set
from primitives import PRIMITIVES

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\()|(\))|(,))")

#: Longer tree strings are refused before any parsing (some 40,000 nodes; the search's default
#: limit is 64): a best.json from anywhere cannot make a load take minutes or gigabytes.
MAX_TREE_CHARACTERS = 200_000


def shorten(text: str, keep: int = 80) -> str:
    """A tree string cut for an error message (one readable line whatever its size)."""
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise GpLossError(
                f"unexpected character {text[pos]!r} at position {pos} in tree {shorten(text)!r}"
            )
        tokens.append(match.group(match.lastindex or 0))
        pos = match.end()
    return tokens


_WEIGHT = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*\*\s*")


def split_weight(text: str) -> tuple[str, str]:
    """``"C * neg(...)"`` -> ``("C", "neg(...)")``; a tree without a prefix has weight 1. A
    weight outside :data:`gp_loss.trees.space.WEIGHTS` is a one-line error."""
    match = _WEIGHT.match(text)
    if match is None:
        return "1", text
    weight = match.group(1)
    if weight not in WEIGHTS:
        raise GpLossError(
            f"unknown weight {weight!r} in tree {shorten(text)!r}; a slot's weight is one of {', '.join(WEIGHTS)}"
        )
    return weight, text[match.end() :]


def parse_tree(text: str, signature: SlotSignature) -> LossTree:
    """Parse a tree string such as ``neg(mul(y, log(y_hat)))`` into a :class:`LossTree`; a
    weight prefix (``C * neg(...)``, :func:`split_weight`) becomes the tree's ``weight``.

    Raises:
        GpLossError: an unknown name, a primitive this slot does not allow, a wrong number of
            arguments or malformed syntax; the message names the problem in one line.
    """
    if not isinstance(text, str) or not text.strip():
        raise GpLossError(f"empty or non-string tree: {shorten(repr(text))}")
    if len(text) > MAX_TREE_CHARACTERS:
        raise GpLossError(
            f"tree of {len(text)} characters refused (at most {MAX_TREE_CHARACTERS}): {shorten(text)!r}"
        )
    weight, text = split_weight(text)
    pset = primitive_set(signature)
    prims = {p.name: p for p in pset.primitives[pset.ret]}
    terms = {t.format(): t for t in pset.terminals[pset.ret]}
    tokens = _tokens(text)
    nodes: list = []
    frames: list[list] = []  # [primitive, arguments seen]
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise GpLossError(f"tree {shorten(text)!r} ends early")
        i += 1
        return tokens[i - 1]

    while True:
        name = take()
        if name in prims:
            nodes.append(prims[name])
            if take() != "(":
                raise GpLossError(f"primitive {name!r} must be followed by '(' in tree {shorten(text)!r}")
            frames.append([prims[name], 0])
            continue
        if name in terms:
            nodes.append(terms[name])
        elif name in PRIMITIVES:
            raise GpLossError(
                f"primitive {name!r} is not allowed in this slot (non-spatial) in tree {shorten(text)!r}"
            )
        elif name in "(),":
            raise GpLossError(f"expected a primitive or an input, got {name!r} in tree {shorten(text)!r}")
        else:
            known = ", ".join([*sorted(prims), *terms])
            raise GpLossError(f"unknown name {name!r} in tree {shorten(text)!r}; known: {known}")
        # an operand is complete: close every primitive whose arguments are all there
        while True:
            if not frames:
                if i != len(tokens):
                    raise GpLossError(f"unexpected {tokens[i]!r} after the end of tree {shorten(text)!r}")
                return LossTree(nodes, weight)
            frame = frames[-1]
            frame[1] += 1
            prim: gp.Primitive = frame[0]
            sep = take()
            if sep == "," and frame[1] < prim.arity:
                break
            if sep == ")" and frame[1] == prim.arity:
                frames.pop()
                continue
            if sep in ",)":
                raise GpLossError(
                    f"primitive {prim.name!r} takes {prim.arity} argument(s), "
                    f"got {'more' if sep == ',' else frame[1]} in tree {shorten(text)!r}"
                )
            raise GpLossError(
                f"expected ',' or ')' after an argument of {prim.name!r} in tree {shorten(text)!r}"
            )
