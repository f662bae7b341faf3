"""The `newsletter` command line: a thin Typer shell over the library.

Owns: parsing arguments, prompting, printing, and turning library errors into exit
codes (:mod:`.app`, the one place that does). One module per command group:
:mod:`.issue` (new, check, build, preview), :mod:`.send` (send; what it prints about
the plan and the outcome is :mod:`.send_report`), :mod:`.status`, :mod:`.subscribers`
(the sub-app; its commands in :mod:`.subscriber_reports` and :mod:`.subscriber_changes`,
sharing :mod:`.subscriber_options` and :mod:`.subscriber_output`), :mod:`.signups`,
:mod:`.serve`, :mod:`.archive`.

May import: every other package. Nothing imports it (but ``newsletter.__main__``).
"""
