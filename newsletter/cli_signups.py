"""`newsletter signups ...` (being written)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Handle mail sent to the contact address: signups, unsubscribes, bounces.")
