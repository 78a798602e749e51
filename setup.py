"""Packaging for gp-loss: searching loss functions from scratch (AutoLoss-Zero)."""

from pathlib import Path

from setuptools import find_packages, setup

VERSION = Path(__file__).with_name("gp_loss").joinpath("version.py").read_text(encoding="utf-8")
VERSION = VERSION.split('__version__ = "', 1)[1].split('"', 1)[0]

setup(
    name="gp-loss",
    version=VERSION,
    description="Search loss functions from scratch with genetic programming (AutoLoss-Zero).",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(
        include=["gp_loss", "gp_loss.*", "primitives", "primitives.*", "tasks", "tasks.*"]
    ),
    py_modules=["cli"],
    install_requires=[
        "deap>=1.4",
        "torch>=2.2",
        "torchvision>=0.17",
        "numpy>=1.24",
        "scipy>=1.10",
        "click>=8.1",
        "sympy>=1.12",
        "scikit-learn>=1.3",
        "pycocotools>=2.0.7",
        "matplotlib>=3.7",
        "tomli>=2.0; python_version < '3.11'",
    ],
    extras_require={
        "test": ["pytest>=7.4", "pytest-timeout>=2.2", "hypothesis>=6.90", "ruff>=0.5", "playwright>=1.40"],
        "ray": ["ray>=2.9"],
        "tracking": ["tensorboard>=2.14", "mlflow>=2.9"],
    },
    entry_points={"console_scripts": ["gp-loss=cli:main"]},
)
