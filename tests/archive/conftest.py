"""The archive tests' home: three issues around the sample, one of them tricky."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.archivekit import write_tricky_issue, write_variant


@pytest.fixture
def three(home: Path) -> Path:
    """A home with vol-2.18 (https hero), vol-2.19 (the sample), vol-2.20 (tricky headline)."""
    write_variant(
        home,
        "2.18",
        "2023-09-29",
        replace={
            "src: assets/vol-2.19-hero.png": "src: https://images.example.org/vol-2.18.jpg",
            "US-Japan business leaders call on govts": "Business leaders urge govts",
        },
    )
    write_tricky_issue(home)
    return home
