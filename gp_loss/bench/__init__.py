"""Benchmarks behind ``python cli.py bench ...``; each prints a table measured in one run."""
