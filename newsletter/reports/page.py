"""The HTML report: a table of the last issues and three charts, in one page.

Self-contained: the CSS is inline and the charts are inline SVG, so the page works as
a file (``newsletter report --html``) and behind ``newsletter serve`` alike, under a
policy that lets it load nothing from anywhere (:data:`REPORT_CSP`).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from newsletter.reports.charts import funnel_chart, growth_chart, rates_chart
from newsletter.reports.summary import IssueReport, percent

#: The page loads nothing: its style and charts are inline, and it runs no script.
REPORT_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_CSS: Final = """
*{box-sizing:border-box}
body{margin:0;padding:16px;font:15px/1.5 system-ui,sans-serif;color:#1b1b1b;background:#f6f7f9}
main{max-width:1100px;margin:0 auto}
h1{font-size:1.4rem;margin:0 0 4px}
p.lead{margin:0 0 16px;color:#555}
.table{overflow-x:auto;background:#fff;border:1px solid #dde1e6;border-radius:6px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;text-align:right;white-space:nowrap;border-bottom:1px solid #eef0f3}
th:first-child,td:first-child{text-align:left}
td.warn{color:#b00020;font-weight:600}
ul.warnings{color:#b00020;padding-left:20px}
figure{margin:16px 0;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px}
figure svg{display:block;width:100%;height:auto}
figcaption{font-size:.9rem;color:#555;padding:4px 8px}
"""


def _row(r: IssueReport, growth: str) -> str:
    def cell(text: str, warn: bool = False) -> str:
        return f'<td class="warn">{escape(text)}</td>' if warn else f"<td>{escape(text)}</td>"

    opens = percent(r.open_rate) if r.tracked else "not tracked"
    return (
        "<tr>"
        + cell(r.issue)
        + cell(r.first_sent[:10])
        + cell(f"{r.audience:,}")
        + cell(growth)
        + cell(percent(r.delivery_rate))
        + cell(percent(r.permanent_rate), r.permanent_rate > 0.01)
        + cell(percent(r.temporary_rate), r.temporary_rate > 0.05)
        + cell(percent(r.complaint_rate), r.complaints > 0 and r.complaint_rate >= 0.003)
        + cell(f"{r.unsubscribes:,}")
        + cell(opens)
        + "</tr>"
    )


def render_page(reports: Sequence[IssueReport], *, title: str = "Issue reports") -> str:
    """The whole page for ``reports`` (oldest first); counts only, never an address."""
    rows = []
    before: int | None = None
    for r in reports:
        rows.append(_row(r, "" if before is None else f"{r.audience - before:+,}"))
        before = r.audience
    warnings = [f"{r.issue}: {w}" for r in reports for w in r.warnings]
    heads = (
        "issue", "first sent", "readers", "growth", "delivered", "hard", "soft",
        "complaints", "unsubscribes", "opens",
    )  # fmt: skip
    charts = ""
    if reports:
        charts = "".join(
            f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
            for svg, caption in (
                (funnel_chart(reports), "Readers at each step, per issue."),
                (growth_chart(reports), "How many readers each issue went to."),
                (
                    rates_chart(reports),
                    "Hard bounces must stay at or under 1 %, soft at or under 5 %, "
                    "complaints under 0.3 % (dashed lines).",
                ),
            )
        )
    warn_html = (
        '<ul class="warnings">' + "".join(f"<li>{escape(w)}</li>" for w in warnings) + "</ul>"
        if warnings
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="lead">{len(reports)} issues; rates of the readers each issue went to '
        "(complaints, unsubscribes and opens: of those it was delivered to).</p>"
        f"{warn_html}"
        '<div class="table"><table><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in heads)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table></div>{charts}</main></body></html>\n"
    )
