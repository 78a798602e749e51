"""A research script that runs DEAP's own algorithms on gp-loss's toolbox.

    python examples/deap_research.py --ngen 3 --pop 20

``gp_loss.make_toolbox`` registers expr / individual / population / mutate / mate / select /
evaluate / map; ``deap.algorithms.eaSimple`` and ``eaMuPlusLambda`` run on it unchanged.
"""

from __future__ import annotations

import argparse
import random

import numpy as np
from deap import algorithms, tools

import gp_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="cls_digits")
    parser.add_argument("--pop", type=int, default=20)
    parser.add_argument("--ngen", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    random.seed(args.seed)
    toolbox = gp_loss.make_toolbox(args.task)
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", np.max)
    stats.register("mean", np.mean)
    hall = tools.HallOfFame(3)

    population = toolbox.population(n=args.pop)
    population, _ = algorithms.eaSimple(
        population, toolbox, cxpb=0.5, mutpb=0.4, ngen=args.ngen, stats=stats, halloffame=hall, verbose=True
    )
    population, _ = algorithms.eaMuPlusLambda(
        population,
        toolbox,
        mu=args.pop,
        lambda_=args.pop,
        cxpb=0.3,
        mutpb=0.6,
        ngen=args.ngen,
        stats=stats,
        halloffame=hall,
        verbose=True,
    )
    outcomes: dict[str, int] = {}
    for record in toolbox.evaluate.history:
        outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
    print("outcomes:", outcomes)
    for individual in hall:
        print(f"hall of fame: {individual.fitness.values[0]:.4f}  {individual}")


if __name__ == "__main__":
    main()
