"""Search a classification loss for your own model and data: an MLP on scikit-learn's breast-cancer data.

    python examples/breast_cancer_classifier.py --budget 3m --seeds 3

No subclassing: :class:`tasks.generic.GenericTask` takes a model factory, the data, and the
training recipe. The search runs AutoLoss-Zero on it; the found loss is then retrained beside
cross-entropy with the same seeds and scored on held-out test data. Copy this file and swap in
your model and data.

Breast cancer rather than wine: with wine's 178 samples the validation split holds 36, every
reasonable loss scores 1.0 on it within a few seconds, and the search cannot tell losses apart
(measured: the found loss then retrained below cross-entropy). 569 samples give 114 to validate on.
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import gp_loss
from tasks.generic import GenericTask


def breast_cancer_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Stratified 60 / 20 / 20 train / val / test splits, features standardised on train."""
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, random_state=0, stratify=y)
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)

    def pair(x, y):
        return torch.tensor((x - mean) / std, dtype=torch.float32), torch.tensor(y)

    return {"train": pair(x_train, y_train), "val": pair(x_val, y_val), "test": pair(x_test, y_test)}


def mlp() -> torch.nn.Module:
    """30 features -> 32 hidden units -> 2 classes (malignant, benign)."""
    return torch.nn.Sequential(torch.nn.Linear(30, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="3m", help="search wall clock (90s, 3m, ...)")
    parser.add_argument("--seeds", type=int, default=3, help="retrainings per loss")
    parser.add_argument("--steps", type=int, default=200, help="training steps per model")
    parser.add_argument("--out", default=None, help="run directory (default: under runs/)")
    args = parser.parse_args()

    splits = breast_cancer_splits()
    task = GenericTask(
        mlp,
        splits["train"],
        splits["val"],
        test_data=splits["test"],
        adapter="softmax_onehot",
        name="breast_cancer",
        steps=args.steps,
        batch_size=32,
        lr=3e-3,
    )
    result = gp_loss.search(task, budget=args.budget, out=args.out)
    print(result.summary())
    if result.best is None:
        print("no loss trained within the budget; give it more time")
        return
    print(
        gp_loss.compare(
            task, {"found": result, "cross-entropy": "cross_entropy"}, seeds=args.seeds
        ).markdown()
    )


if __name__ == "__main__":
    main()
