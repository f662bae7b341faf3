"""The `newsletter` command: a thin Typer shell over the library.

Every command calls the library and lets :class:`~newsletter.errors.NewsletterError`
propagate; :class:`NewsletterGroup` is the one place that turns it into a message on
stderr and the class's exit code, so no command prints a traceback.
"""


import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from typing import Any

from newsletter.console import err_console
from newsletter.errors import ExitCode, NewsletterError
from newsletter.lazyimport import deferring

# typer imports subprocess for launch() (`preview`) and shell-completion installs only:
# every other command starts without it (a stand-in until first used)
with deferring("subprocess"):
    import typer
    from typer.core import TyperGroup


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


_APP_OPTIONS: dict[str, Any] = {
    "cls": NewsletterGroup,
    "name": "newsletter",
    "help": "Compile, render and deliver an email digest, and keep its subscriber list.\n\n"
    "Run from the newsletter's home folder (the one holding issues/, templates/ and "
    "subscribers/). ISSUE is a name such as vol-2.19 (looked up in issues/) or a path.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("newsletter")
        except PackageNotFoundError:  # running from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"newsletter {number}")
        raise typer.Exit()


def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Compile, render and deliver an email digest, and keep its subscriber list."""


#: each top-level command or group -> the module of newsletter.cli that provides it, so a
#: run of one command registers (and builds the click objects of) that module alone;
#: tests/cli/test_startup.py checks this table against the full registration
PROVIDERS: dict[str, str] = {
    "new": "issue",
    "check": "issue",
    "build": "issue",
    "preview": "issue",
    "send": "send",
    "status": "status",
    "serve": "serve",
    "archive": "archive",
    "cancel": "schedule",
    "run-due": "schedule",
    "doctor": "doctor",
    "report": "report",
    "subscribers": "subscribers",
    "signups": "signups",
    "dkim": "doctor",
}


def _register(app: typer.Typer, only: str | None = None, rest: Sequence[str] = ()) -> None:
    # Command modules hold plain functions and sub-apps; registering them here keeps the
    # import graph one-way (command modules never import this module). Each imports
    # what its commands use inside them, so registering (and --help) stays cheap:
    # tests/cli/test_startup.py guards it. ``only`` names one command: the others are
    # neither imported nor turned into click objects (start-up time); ``rest`` (the
    # arguments after it) lets a group register the one subcommand they name.
    import importlib

    def wanted(name: str) -> bool:
        return only is None or name == only

    def provider(module: str) -> Any:
        return importlib.import_module(f"newsletter.cli.{module}")

    for module in ("issue", "send", "status", "serve", "archive", "schedule", "doctor", "report"):
        if only is not None and PROVIDERS[only] != module:
            continue
        for command in provider(module).COMMANDS:
            if wanted(command.__name__.replace("_", "-")):
                app.command()(command)
    if wanted("subscribers"):
        group = provider("subscribers")
        app.add_typer(group.build_app(group.command_named(rest)), name="subscribers")
    if wanted("signups"):
        app.add_typer(provider("signups").app, name="signups")
    if wanted("dkim"):
        app.add_typer(provider("doctor").dkim_app, name="dkim")


def build_app(only: str | None = None, rest: Sequence[str] = ()) -> typer.Typer:
    """The `newsletter` app with every command, or with ``only`` that one (run with
    the arguments ``rest``)."""
    made = typer.Typer(**_APP_OPTIONS)
    made.callback()(_root)
    _register(made, only, rest)
    return made


def _command_named(argv: list[str]) -> str | None:
    """The command a run names, when its first argument is one (None: root options,
    root help or an unknown name, which need every command)."""
    return argv[0] if argv and argv[0] in PROVIDERS else None


_full_app: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    # ``app`` (every command) is built on first use: tests and ``python -m`` take it
    global _full_app
    if name == "app":
        if _full_app is None:
            _full_app = build_app()
        return _full_app
    raise AttributeError(name)


def main() -> None:
    """Console-script entry point."""
    # pydantic looks for plugins (observability hooks) by reading the entry points of
    # every installed distribution, the first time it builds a model: about 15 ms of
    # `check`, for hooks this tool never uses. Its documented switch turns the search
    # off; set PYDANTIC_DISABLE_PLUGINS= (empty) to have it search again.
    # For this run only: a program that calls main() keeps its own setting after it.
    ours = "PYDANTIC_DISABLE_PLUGINS" not in os.environ
    if ours:
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    argv = sys.argv[1:]
    name = _command_named(argv)
    try:
        build_app(name, argv[1:] if name else ())()
    finally:
        if ours:
            os.environ.pop("PYDANTIC_DISABLE_PLUGINS", None)


def console_main() -> None:
    """The `newsletter` command and `python -m newsletter`: :func:`main`, in a process
    that ends with it."""
    try:
        main()
    finally:
        if _command_named(sys.argv[1:]) == "send":
            # At exit the interpreter's last collection walks every object still alive:
            # 0.1-0.3 s after a 100,000-reader send. Frozen, they are freed as the
            # modules are cleared, without that walk. (Not in main(): a program that
            # calls it keeps its heap collectable.) The ledger is closed first: its WAL
            # checkpointed into the file, so a copy of the file alone holds it all.
            live = sys.modules.get("newsletter.audience.subscribers.live")
            if live is not None:
                with contextlib.suppress(Exception):  # (the command's own exit stands)
                    live.close_ledgers()
            gc.freeze()
