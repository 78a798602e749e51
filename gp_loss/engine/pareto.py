"""Many objectives: non-dominated sorting and crowding distance, as NSGA-II ranks a population.

A point is a candidate's proxy rung and its objective values, every one to be maximised (a
task metric, or ``size`` as minus the genome's node count). ``a`` dominates ``b`` when it
trained to a higher rung (scores at different rungs are not comparable: the single-objective
search ranks rung first too), or at the same rung is at least as good in every objective and
better in one. The functions are DEAP's ``sortNondominated`` and ``assignCrowdingDist``
(Deb et al. 2002), written for plain tuples so that the aging population keeps its members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: The objective that is not a metric: the genome's size, smaller is better.
SIZE = "size"

Point = tuple[int, Sequence[float]]  # (rung, objective values)


def objective_values(names: Sequence[str], metrics: Mapping[str, float], nodes: int) -> list[float]:
    """The values to maximise: each named metric, and ``size`` as minus the node count."""
    return [-float(nodes) if name == SIZE else float(metrics[name]) for name in names]


def dominates(a: Point, b: Point) -> bool:
    """Whether ``a`` dominates ``b`` (see the module docstring)."""
    if a[0] != b[0]:
        return a[0] > b[0]
    return all(x >= y for x, y in zip(a[1], b[1])) and any(x > y for x, y in zip(a[1], b[1]))


def fronts(points: Sequence[Point]) -> list[list[int]]:
    """Indices of ``points`` by non-dominated front, the first front first."""
    dominated_by = [0] * len(points)
    dominating: list[list[int]] = [[] for _ in points]
    for i, a in enumerate(points):
        for j in range(i + 1, len(points)):
            if dominates(a, points[j]):
                dominating[i].append(j)
                dominated_by[j] += 1
            elif dominates(points[j], a):
                dominating[j].append(i)
                dominated_by[i] += 1
    current = [i for i, n in enumerate(dominated_by) if n == 0]
    out = []
    while current:
        out.append(current)
        following = []
        for i in current:
            for j in dominating[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(j)
        current = sorted(following)
    return out


def crowding(points: Sequence[Point], members: Sequence[int]) -> dict[int, float]:
    """Crowding distance of each of ``members`` (one front) in objective space: the extremes of
    every objective get infinity, the others the normalised gaps to their neighbours."""
    distance = dict.fromkeys(members, 0.0)
    if len(members) <= 2:
        return {i: float("inf") for i in members}
    for k in range(len(points[members[0]][1])):
        ordered = sorted(members, key=lambda i: points[i][1][k])
        low, high = points[ordered[0]][1][k], points[ordered[-1]][1][k]
        distance[ordered[0]] = distance[ordered[-1]] = float("inf")
        if high == low:
            continue
        for before, here, after in zip(ordered, ordered[1:], ordered[2:]):
            distance[here] += (points[after][1][k] - points[before][1][k]) / (high - low)
    return distance


def ranking(points: Sequence[Point]) -> list[tuple[int, float]]:
    """Per point: (front index, crowding distance); lower front, then larger distance, is better."""
    out: list[tuple[int, float]] = [(0, 0.0)] * len(points)
    for rank, front in enumerate(fronts(points)):
        for i, gap in crowding(points, front).items():
            out[i] = (rank, gap)
    return out


def worst(points: Sequence[Point]) -> int:
    """The index NSGA-II drops first: the last front's most crowded point (the oldest on a tie)."""
    ranks = ranking(points)
    return max(range(len(points)), key=lambda i: (ranks[i][0], -ranks[i][1], -i))


def first_front(points: Sequence[Point]) -> list[int]:
    """The non-dominated points' indices."""
    return fronts(points)[0] if points else []
