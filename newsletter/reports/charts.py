"""The report's charts, drawn on the server as inline SVG by pygal.

No script (pygal's tooltips load JavaScript from its site; ``js=[]`` turns that off,
and :func:`_svg` drops the inline config script pygal writes anyway), no fonts or
images from anywhere: each chart is one ``<svg>`` with a ``viewBox`` and
no fixed size, so it scales to the width of a phone or a desktop.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any, Final

from newsletter.reports.summary import (
    COMPLAINT_LIMIT,
    PERMANENT_LIMIT,
    TEMPORARY_LIMIT,
    IssueReport,
)

WIDTH: Final = 800
HEIGHT: Final = 380
_SCRIPT: Final = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)


def _svg(chart: Any) -> str:
    """The chart as SVG text, without pygal's inline script (nothing here needs it)."""
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def _import_pygal() -> Any:
    """pygal, without the import hook it adds for its map plugins.

    pygal appends a ``sys.meta_path`` finder with only the legacy ``find_module``; every
    later failed import then passes through it and Python warns (ImportWarning), which
    breaks any code that imports optional modules (uvicorn probing for uvloop) under
    warnings-as-errors. The reports use no map plugin, so the hook goes.
    """
    import pygal

    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]
    return pygal


def _chart(kind: str, title: str, reports: Sequence[IssueReport], **options: Any) -> Any:
    pygal = _import_pygal()
    from pygal.style import Style

    style = Style(
        background="white",
        plot_background="white",
        font_family="system-ui, sans-serif",
        colors=("#1f4e79", "#2e8540", "#d4a017", "#8e44ad", "#c0392b", "#7f8c8d"),
        title_font_size=18,
        label_font_size=12,
        legend_font_size=13,
    )
    chart = getattr(pygal, kind)(
        js=[],
        explicit_size=False,
        disable_xml_declaration=True,
        width=WIDTH,
        height=HEIGHT,
        style=style,
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        x_label_rotation=30 if len(reports) > 6 else 0,
        print_values=False,
        **options,
    )
    chart.title = title
    chart.x_labels = [r.issue for r in reports]
    return chart


def funnel_chart(reports: Sequence[IssueReport]) -> str:
    """Per issue: sent to, delivered, opened and clicked (when tracked), complaints."""
    chart = _chart("Bar", "Delivery funnel per issue (readers)", reports)
    chart.add("sent to", [r.audience for r in reports])
    chart.add("delivered", [r.delivered for r in reports])
    if any(r.tracked for r in reports):
        chart.add("opened", [r.opens if r.tracked else None for r in reports])
        chart.add("clicked", [r.clicks if r.tracked else None for r in reports])
    chart.add("unsubscribed", [r.unsubscribes for r in reports])
    return _svg(chart)


def growth_chart(reports: Sequence[IssueReport]) -> str:
    """Readers each issue went to, over time."""
    chart = _chart("Line", "List growth: readers per issue", reports, show_dots=True)
    chart.add("readers", [r.audience for r in reports])
    return _svg(chart)


def rates_chart(reports: Sequence[IssueReport]) -> str:
    """Failure and complaint rates per issue, with the limits drawn as dashed lines."""
    chart = _chart(
        "Line",
        "Bounce and complaint rates against the limits (%)",
        reports,
        show_dots=True,
        value_formatter=lambda v: f"{v:.2f} %",
    )
    n = len(reports)
    chart.add("hard (permanent)", [round(r.permanent_rate * 100, 3) for r in reports])
    chart.add("soft (temporary)", [round(r.temporary_rate * 100, 3) for r in reports])
    chart.add("complaints", [round(r.complaint_rate * 100, 3) for r in reports])
    dashed = {"stroke_style": {"dasharray": "6, 4", "width": 1.5}, "show_dots": False}
    chart.add("limit: hard 1 %", [PERMANENT_LIMIT * 100] * n, **dashed)
    chart.add("limit: soft 5 %", [TEMPORARY_LIMIT * 100] * n, **dashed)
    chart.add("limit: complaints 0.3 %", [COMPLAINT_LIMIT * 100] * n, **dashed)
    return _svg(chart)
