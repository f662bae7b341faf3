"""Fixtures shared by the transport tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.compose.message import MessageBuilder
from tests.support.sendkit import make_builder, make_settings


@pytest.fixture
def builder(home: Path) -> MessageBuilder:
    return make_builder(make_settings(home))
