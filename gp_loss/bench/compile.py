"""``bench compile``: our generated code vs ``deap.gp.compile`` vs hand-written torch."""

from __future__ import annotations

import time

import torch
from deap import gp

from gp_loss.bench.timing import interleaved, machine
from gp_loss.core.baselines import get_baseline
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.codegen import compile_tree
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.space import primitive_set
from primitives.elementwise import log as safe_log


def run(shape: tuple[int, int, int, int] = (8, 21, 64, 64), rounds: int = 7, repeats: int = 10) -> str:
    """Forward+backward time of the cross-entropy tree, three ways; returns a Markdown report."""
    torch.manual_seed(0)
    signature = SlotSignature("softmax_onehot", spatial=True)
    tree = get_baseline("cross_entropy").tree
    logits = torch.randn(shape)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]))
    y = torch.nn.functional.one_hot(labels, shape[1]).permute(0, 3, 1, 2).float()
    y_hat = torch.softmax(logits, dim=1).requires_grad_(True)

    start = time.perf_counter()
    ours = compile_tree(tree, signature)
    ours_compile = time.perf_counter() - start
    start = time.perf_counter()
    deap_fn = gp.compile(parse_tree(tree, signature), primitive_set(signature))
    deap_compile = time.perf_counter() - start

    def step(fn):
        def call() -> None:
            y_hat.grad = None
            fn(y_hat, y).mean().backward()

        return call

    def hand(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -(t * torch.log(p))

    def hand_safe(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -(t * safe_log(p))

    times = interleaved(
        {
            "hand-written torch": step(hand),
            "hand-written torch, same safe log": step(hand_safe),
            "gp-loss codegen": step(ours),
            "deap.gp.compile": step(deap_fn),
        },
        rounds=rounds,
        repeats=repeats,
    )
    base = times["hand-written torch"]
    rows = [
        "| implementation | ms / fwd+bwd | ratio vs hand-written |",
        "|---|---:|---:|",
        *(f"| {name} | {t * 1e3:.3f} | {t / base:.2f}x |" for name, t in times.items()),
    ]
    return "\n".join(
        [
            f"tree: `{tree}` on {tuple(shape)} float32 tensors, forward + backward, "
            f"median of {rounds} interleaved rounds x {repeats} calls",
            f"machine: {machine()}",
            "",
            *rows,
            "",
            f"compile once: gp-loss codegen {ours_compile * 1e3:.2f} ms, deap.gp.compile {deap_compile * 1e3:.2f} ms",
        ]
    )
