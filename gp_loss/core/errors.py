"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class GpLossError(Exception):
    """A problem with the user's input (unknown name, bad file, bad tree...).

    The message is one line and says what is wrong and, where it helps, what is valid.
    """
