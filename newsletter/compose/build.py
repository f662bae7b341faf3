"""Write an issue's build folder: email.html, email.txt, a sample email.eml, images."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from newsletter.compose.issuefile import load_issue
from newsletter.compose.lint import check_html_size, lint_issue
from newsletter.compose.models import Issue
from newsletter.compose.render import (
    PLACEHOLDER_UNSUBSCRIBE,
    RenderedIssue,
    html_for_files,
    render_issue,
)
from newsletter.config import Settings
from newsletter.errors import Problem
from newsletter.files import write_atomic

#: the sample .eml's recipient (address, name)
SAMPLE_RECIPIENT = ("reader@example.org", "Sample Reader")


@dataclass
class BuildResult:
    issue: Issue
    rendered: RenderedIssue
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def check_issue(path: Path, settings: Settings) -> tuple[Issue, RenderedIssue, list[Problem]]:
    """Load (errors raise), render, and return every warning."""
    issue = load_issue(path)
    rendered = render_issue(issue, settings)
    warnings = lint_issue(issue, path) + check_html_size(issue, rendered.html, path)
    if not settings.public_url:
        warnings.append(
            Problem(
                str(path),
                None,
                "",
                "NEWSLETTER_PUBLIC_URL is not set: no view-in-browser "
                "link, and unsubscribe works by mailto only",
                "warning",
            )
        )
    return issue, rendered, warnings


def build_issue(path: Path, settings: Settings, out_dir: Path | None = None) -> BuildResult:
    """Render once and write the three files (plus images) into ``out_dir``."""
    # the message builder (email headers, tokens) loads here, not for `check`
    from newsletter.compose.message import MessageBuilder, Recipient

    issue, rendered, warnings = check_issue(path, settings)
    out = out_dir if out_dir is not None else settings.build_dir / issue.slug
    builder = MessageBuilder(rendered, settings)
    sample = Recipient(*SAMPLE_RECIPIENT)
    sample_url = builder.unsubscribe_url(sample)
    result = BuildResult(issue, rendered, out, warnings=warnings)
    html = html_for_files(rendered).replace(
        PLACEHOLDER_UNSUBSCRIBE, sample_url.replace("&", "&amp;")
    )
    text = rendered.text.replace(PLACEHOLDER_UNSUBSCRIBE, sample_url)
    outputs = {
        "email.html": html.encode("utf-8"),
        "email.txt": text.encode("utf-8"),
        "email.eml": builder.to_bytes(sample),
    }
    for image in rendered.images:
        outputs[image.filename] = image.data
    for name, data in outputs.items():
        write_atomic(out / name, data)
        result.files.append(out / name)
    return result
