"""Search options declared once: each setting is a dataclass field (of ``EvolutionConfig``,
``PipelineOptions``, ``ExecutionOptions`` or ``TrackingOptions``) whose metadata holds its help
text, its ``evolve`` flag and its ``gp_loss.search`` keyword; the click options and the
keywords are derived from the fields, and each dataclass's ``validate()`` checks them
(docs/architecture.md section 8)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: ``cli_default``: the flag's default is the field's own.
SAME: Any = object()


@dataclass(frozen=True)
class Declared:
    """One declared setting, read from a field's metadata (see :func:`option`)."""

    field: str
    default: Any
    help: str
    flag: str
    keyword: str
    negate: bool
    cli_default: Any
    choices: tuple[str, ...] | None
    type: type | None
    parse: Callable[[str], Any] | None
    metavar: str | None

    @property
    def switch(self) -> bool:
        """A flag without a value: turns a setting on (``--constant-one``) or, negated, off."""
        return self.negate or (isinstance(self.default, bool) and self.parse is None and self.choices is None)

    @property
    def param(self) -> str:
        """The click parameter's name (what ``evolve``'s keyword arguments hold)."""
        return self.flag.lstrip("-").replace("-", "_")


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    keyword: str | None = None,
    negate: bool = False,
    cli_default: Any = SAME,
    choices: tuple[str, ...] | None = None,
    type: type | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field that is also a setting of ``evolve`` and ``gp_loss.search``.

    Args:
        help: the flag's help text.
        flag: the ``evolve`` flag (default ``--`` and the field's name with dashes).
        keyword: the ``gp_loss.search`` keyword (default: the field's name).
        negate: a switch that is on by default, turned off by its flag (``--no-gec``).
        cli_default: the flag's default where it is not the field's (``None``: left to the
            task or to the run being resumed).
        choices, type: what the flag accepts; ``parse`` turns its text into the value
            (``--rungs 0.25,1``, ``--eval-timeout 90s``).
    """
    metadata = {
        "help": help,
        "flag": flag,
        "keyword": keyword,
        "negate": negate,
        "cli_default": cli_default,
        "choices": choices,
        "type": type,
        "parse": parse,
        "metavar": metavar,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata={"gp_loss": metadata})
    return dataclasses.field(default=default, metadata={"gp_loss": metadata})


def declared(cls: type) -> list[Declared]:
    """The declared settings of a dataclass, in field order."""
    out = []
    for found in dataclasses.fields(cls):
        meta = found.metadata.get("gp_loss")
        if meta is None:
            continue
        default = found.default if found.default is not dataclasses.MISSING else found.default_factory()  # type: ignore[misc]
        out.append(
            Declared(
                field=found.name,
                default=default,
                help=meta["help"],
                flag=meta["flag"] or "--" + found.name.replace("_", "-"),
                keyword=meta["keyword"] or found.name,
                negate=meta["negate"],
                cli_default=default if meta["cli_default"] is SAME else meta["cli_default"],
                choices=meta["choices"],
                type=meta["type"],
                parse=meta["parse"],
                metavar=meta["metavar"],
            )
        )
    return out


def click_options(*classes: type) -> Callable[[Callable], Callable]:
    """A decorator adding every declared setting of ``classes`` as a click option."""
    import click

    def wrap(command: Callable) -> Callable:
        for cls in reversed(classes):
            for item in reversed(declared(cls)):
                command = click.option(item.flag, item.param, **_click_kwargs(item, click))(command)
        return command

    return wrap


def _click_kwargs(item: Declared, click) -> dict[str, Any]:
    if item.switch:
        return {"is_flag": True, "help": item.help}
    kwargs: dict[str, Any] = {"default": item.cli_default, "help": item.help, "metavar": item.metavar}
    if item.choices:
        kwargs["type"] = click.Choice(list(item.choices))
    elif item.parse is None and item.type is not None:
        kwargs["type"] = item.type
    shown = item.cli_default is not None and not isinstance(item.cli_default, tuple)
    kwargs["show_default"] = (
        f"{item.cli_default:.3g}" if shown and isinstance(item.cli_default, float) else shown
    )
    return kwargs


def from_flags(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` that ``evolve``'s flags set (a flag left at ``None`` sets nothing,
    a negated switch turns its field off)."""
    out: dict[str, Any] = {}
    for item in declared(cls):
        given = values.get(item.param)
        if item.switch:
            if given:
                out[item.field] = not item.negate
        elif given is not None:
            out[item.field] = item.parse(given) if item.parse and isinstance(given, str) else given
    return out


def keywords(classes: Iterable[type]) -> dict[str, tuple[type, str]]:
    """``gp_loss.search`` keyword -> (the dataclass, its field)."""
    return {item.keyword: (cls, item.field) for cls in classes for item in declared(cls)}
