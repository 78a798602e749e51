"""The package's version, written once: setup.py reads it, and run.json, the search cache's
fingerprint and export bundles record it."""

__version__ = "0.1.0"
