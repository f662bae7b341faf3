"""Shared terminal output for the CLI modules: one stdout console, one stderr console.

Both are made on first use: importing this module does not import rich, so a command
that prints nothing through them (``--help``) starts without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """Stands in for a :class:`rich.console.Console` made at the first attribute access."""

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def _get(self) -> Console:
        made: Console | None = object.__getattribute__(self, "_console")
        if made is None:
            from rich.console import Console

            made = Console(**object.__getattribute__(self, "_options"))
            object.__setattr__(self, "_console", made)
        return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get(), name, value)


console = cast("Console", _LazyConsole(highlight=False, soft_wrap=True))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))


def echo(text: str = "", *, err: bool = False, fg: str | None = None) -> None:
    """Print words as they are (no markup, emoji or wrapping) without importing rich.

    For commands whose output is only lines of text (``status``, ``check``): rich costs
    a command about 20 ms of start-up. ``fg`` colours the line on a terminal only.
    """
    import typer

    typer.echo(typer.style(text, fg=fg) if fg else text, err=err)
