"""`newsletter --version`: the installed package's version, for bug reports and scripts."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from newsletter.cli.app import app


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"newsletter {version('newsletter')}\n"
    assert version("newsletter") == "0.1.0"


def test_no_arguments_still_shows_help() -> None:
    result = CliRunner().invoke(app, [])
    assert "Usage: newsletter [OPTIONS] COMMAND [ARGS]..." in result.output
    assert "run-due" in result.output and "cancel" in result.output
