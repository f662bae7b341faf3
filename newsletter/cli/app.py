"""The `newsletter` command: a thin Typer shell over the library.

Every command calls the library and lets :class:`~newsletter.errors.NewsletterError`
propagate; :class:`NewsletterGroup` is the one place that turns it into a message on
stderr and the class's exit code, so no command prints a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from newsletter.console import err_console
from newsletter.errors import ExitCode, NewsletterError


class NewsletterGroup(TyperGroup):
    """Root command group: maps library errors to messages and exit codes."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            err_console.print("error: " + exc.message, markup=False, style="red")
            if exc.hint:
                err_console.print(f"hint: {exc.hint}", markup=False, style="dim")
            raise typer.Exit(int(exc.exit_code)) from None
        except OSError as exc:
            # a disk or file-system problem no library boundary foresaw: say it plainly
            where = f"{exc.filename}: " if exc.filename else ""
            err_console.print(f"error: {where}{exc.strerror or exc}", markup=False, style="red")
            raise typer.Exit(int(ExitCode.ERROR)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted", style="yellow")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:
            # sqlite3 is imported by the commands that use it, not here (start-up time)
            sqlite3 = sys.modules.get("sqlite3")
            if sqlite3 is None or not isinstance(exc, sqlite3.Error):
                raise
            err_console.print(f"error: database: {exc}", markup=False, style="red")
            raise typer.Exit(int(ExitCode.ERROR)) from None


app = typer.Typer(
    cls=NewsletterGroup,
    name="newsletter",
    help="Compile, render and deliver an email digest, and keep its subscriber list.\n\n"
    "Run from the newsletter's home folder (the one holding issues/, templates/ and "
    "subscribers/). ISSUE is a name such as vol-2.19 (looked up in issues/) or a path.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("newsletter")
        except PackageNotFoundError:  # running from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"newsletter {number}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Compile, render and deliver an email digest, and keep its subscriber list."""


def _register() -> None:
    # Command modules hold plain functions and sub-apps; registering them here keeps the
    # import graph one-way (command modules never import this module). Each imports
    # what its commands use inside them, so registering (and --help) stays cheap:
    # tests/cli/test_startup.py guards it.
    from newsletter.cli import archive, doctor, issue, report, schedule, send, serve, status
    from newsletter.cli.signups import app as signups_app
    from newsletter.cli.subscribers import app as subscribers_app

    for command in [
        *issue.COMMANDS,
        *send.COMMANDS,
        *status.COMMANDS,
        *serve.COMMANDS,
        *archive.COMMANDS,
        *schedule.COMMANDS,
        *doctor.COMMANDS,
        *report.COMMANDS,
    ]:
        app.command()(command)
    app.add_typer(subscribers_app, name="subscribers")
    app.add_typer(signups_app, name="signups")
    app.add_typer(doctor.dkim_app, name="dkim")


_register()


def main() -> None:
    """Console-script entry point."""
    app()
