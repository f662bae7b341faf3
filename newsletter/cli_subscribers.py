"""`newsletter subscribers ...`: placeholder until the subscriber store lands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage subscribers/subscribers.csv.", no_args_is_help=True)
