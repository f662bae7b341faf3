"""Scaffold: the next issue's file, written from the previous one with TODOs to fill.

Same series, footer and number of stories, the next volume and the date two weeks later;
every headline and detail, and the hero image's source, alt text and credit, are left
for the editor to fill.
"""

from __future__ import annotations

import datetime as dt

import yaml

from newsletter.compose.models import Issue


def next_volume(volume: str) -> str:
    major, minor = volume.split(".")
    return f"{major}.{int(minor) + 1}"


def scaffold_issue(previous: Issue, *, volume: str | None = None) -> tuple[str, str]:
    """Text of the next issue file from the previous one: (slug, yaml text)."""
    vol = volume or next_volume(previous.volume)
    date = previous.date + dt.timedelta(days=14)
    hero = previous.hero

    def q(value: str) -> str:
        return yaml.safe_dump(value, allow_unicode=True, width=1000).strip().removesuffix("\n...")

    lines = [
        f"# {previous.series}, Vol {vol}. Scaffolded from vol-{previous.volume}:",
        "# fill every TODO, then run `newsletter check` until it is clean.",
        f"series: {q(previous.series)}",
        f'volume: "{vol}"',
        f"date: {date.isoformat()}",
        *([f"language: {previous.language}"] if previous.language else []),
        "# subject: defaults to series, volume and date",
        "# preheader: defaults to the first three headlines",
        "# published: true would archive it unsent; a sent issue is archived anyway",
    ]
    if hero is not None:
        lines += [
            "hero:",
            '  src: ""  # TODO: assets/vol-' + vol + "-hero.png or an https:// URL",
            '  alt: ""',
            f"  width: {hero.width or 600}",
            '  credit: "Image Source: [TODO](https://)"',
        ]
    lines.append("stories:")
    for _ in previous.stories:
        lines += ['  - headline: ""', '    detail: ""']
    lines += [
        "footer:",
        f"  about: {q(previous.footer.about)}",
        f"  subscribe: {q(previous.footer.subscribe)}",
        "",
    ]
    return f"vol-{vol}", "\n".join(lines)
