"""Search a regression loss: an MLP on scikit-learn's diabetes data, with the regression adapter.

    python examples/diabetes_regression.py --budget 3m --seeds 3

Loss search is not only for classification: the ``regression`` adapter gives a tree the
prediction ``y_hat`` and the target ``y`` as real numbers. The found loss is retrained beside
the squared error (MSE) with the same seeds; the metric is R^2 on held-out test data.
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

import gp_loss
from tasks.generic import GenericTask


def diabetes_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """60 / 20 / 20 train / val / test splits; features and target standardised on train."""
    x, y = load_diabetes(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, random_state=0)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, random_state=0)
    x_mean, x_std = x_train.mean(axis=0), x_train.std(axis=0)
    y_mean, y_std = y_train.mean(), y_train.std()

    def pair(x, y):
        return torch.tensor((x - x_mean) / x_std, dtype=torch.float32), torch.tensor(
            (y - y_mean) / y_std, dtype=torch.float32
        )

    return {"train": pair(x_train, y_train), "val": pair(x_val, y_val), "test": pair(x_test, y_test)}


def mlp() -> torch.nn.Module:
    """10 features -> 32 hidden units -> 1 value."""
    return torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="3m", help="search wall clock (90s, 3m, ...)")
    parser.add_argument("--seeds", type=int, default=3, help="retrainings per loss")
    parser.add_argument("--steps", type=int, default=300, help="training steps per model")
    parser.add_argument("--out", default=None, help="run directory (default: under runs/)")
    args = parser.parse_args()

    splits = diabetes_splits()
    task = GenericTask(
        mlp,
        splits["train"],
        splits["val"],
        test_data=splits["test"],
        adapter="regression",
        name="diabetes",
        steps=args.steps,
        batch_size=32,
        lr=3e-3,
    )
    result = gp_loss.search(task, budget=args.budget, out=args.out)
    print(result.summary())
    if result.best is None:
        print("no loss trained within the budget; give it more time")
        return
    print(gp_loss.compare(task, {"found": result, "MSE": "squared_error"}, seeds=args.seeds).markdown())


if __name__ == "__main__":
    main()
