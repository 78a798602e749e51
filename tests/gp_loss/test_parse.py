"""Safe parsing of tree strings."""

from __future__ import annotations

import random

import pytest

from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.space import random_tree

SPATIAL = SlotSignature("softmax_onehot", spatial=True, constant_one=True)
VECTOR = SlotSignature("softmax_onehot")


def test_round_trip_of_random_trees():
    random.seed(0)
    for _ in range(200):
        tree = random_tree(SPATIAL, 1, 6)
        assert str(parse_tree(str(tree), SPATIAL)) == str(tree)


def test_whitespace_is_free():
    assert str(parse_tree("  neg( mul(y ,log( y_hat ) ) )\n", VECTOR)) == "neg(mul(y, log(y_hat)))"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo(y)", "unknown name 'foo'"),
        ("mul(y)", "takes 2 argument"),
        ("mul(y, y, y)", "takes 2 argument"),
        ("neg(y, y)", "takes 1 argument"),
        ("neg y", "must be followed by '('"),
        ("neg(", "ends early"),
        ("y)", "unexpected ')'"),
        ("maxpool3(y)", "not allowed in this slot"),
        ("one", "unknown name 'one'"),
        ("", "empty"),
        ("__import__('os').system('echo owned')", "unexpected character"),
        ("exec(y)", "unknown name 'exec'"),
        ("y_hat.__class__", "unexpected character"),
        ("(y)", "expected a primitive or an input"),
    ],
)
def test_bad_trees_give_one_line_errors(text, message):
    with pytest.raises(GpLossError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_tree(text, VECTOR)
    assert "\n" not in str(info.value)


def test_deep_string_parses_without_recursion():
    depth = 2000
    text = "neg(" * depth + "y" + ")" * depth
    assert parse_tree(text, VECTOR).height == depth
