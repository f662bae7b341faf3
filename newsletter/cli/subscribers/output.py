"""How `newsletter subscribers` commands print: plain text, counts, and guarded CSV.

Addresses, names and notes are data, so nothing is read as markup or emoji codes.
CSV output has every cell neutralised against formula injection
(:func:`~newsletter.audience.subscribers.neutralize_cell`).
"""


import csv
from collections.abc import Iterable, Sequence
from typing import TextIO

from newsletter.console import console, err_console


def say(text: str, *, style: str | None = None) -> None:
    """Print a result line on standard output."""
    console.print(text, markup=False, emoji=False, style=style)


def warn(text: str, *, style: str | None = None) -> None:
    """Print a note or warning on standard error."""
    err_console.print(text, markup=False, emoji=False, style=style)


def plural(n: int, word: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def warn_problem_rows(count: int, left_out: str) -> None:
    """Rows with problems are never left out silently: say how many, and where to look."""
    if count:
        warn(
            f"{plural(count, 'row')} with problems not {left_out}: run "
            "`newsletter subscribers check`",
            style="yellow",
        )


def write_csv(out: TextIO, rows: Iterable[Sequence[str]], newline: str = "\n") -> int:
    """Write rows (the first is the header), neutralised; return how many data rows."""
    from newsletter.audience.subscribers import neutralize_cell

    writer = csv.writer(out, lineterminator=newline)
    written = 0
    for row in rows:
        writer.writerow([neutralize_cell(cell) for cell in row])
        written += 1
    return max(written - 1, 0)


def print_counts(
    header: tuple[str, str], rows: Sequence[tuple[str, int]], *, warn_nonzero: str = ""
) -> None:
    """Print a two-column count table (name, count right-aligned) with plain text.

    Without rich (about 20 ms of start-up for ``stats``). On a terminal the header is
    bold and the row named ``warn_nonzero`` is yellow when its count is not 0.
    """
    import typer

    names = [header[0], *(name for name, _ in rows)]
    counts = [header[1], *(str(n) for _, n in rows)]
    left = max(len(n) for n in names)
    right = max(len(c) for c in counts)
    for i, (name, count) in enumerate(zip(names, counts, strict=True)):
        line = f"{name.ljust(left)}  {count.rjust(right)}"
        if i == 0:
            line = typer.style(line, bold=True)
        elif name == warn_nonzero and count != "0":
            line = typer.style(line, fg="yellow")
        typer.echo(line)
