"""The `newsletter` command line: a thin Typer shell over the library.

Owns: parsing arguments, prompting, printing, and turning library errors into exit
codes (:mod:`.app`, the one place that does). One module per command group:
:mod:`.issue` (new, check, build, preview), :mod:`.send` (send; what it prints about
the plan and the outcome is :mod:`.send_report`), :mod:`.status`, :mod:`.subscribers`
(a package: the sub-app, its reading commands in ``reports``, its changing commands in
``changes``, sharing ``options`` and ``output``), :mod:`.signups`, :mod:`.serve`,
:mod:`.archive`.

May import: every other package. Nothing imports it (but ``newsletter.__main__``).
"""
