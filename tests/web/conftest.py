"""Fixtures the web tests share: a webhook key pair, settings, the store, live servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from newsletter.web import create_app
from tests.support.eventkeys import keypair
from tests.support.webserver import Serve, running, web_settings


@pytest.fixture
def keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    return keypair()


@pytest.fixture
def wsettings(home: Path, keys: tuple[ec.EllipticCurvePrivateKey, str]) -> Settings:
    return web_settings(keys[1])


@pytest.fixture
def store(wsettings: Settings) -> SubscriberStore:
    return SubscriberStore.from_settings(wsettings)


@pytest.fixture
def serve(wsettings: Settings) -> Iterator[Serve]:
    """``serve(settings=..., **create_app kwargs) -> httpx.Client`` on a live server."""
    clients: list[tuple[httpx.Client, Any]] = []

    def start(settings: Settings | None = None, **kwargs: Any) -> httpx.Client:
        ctx = running(create_app(settings or wsettings, **kwargs))
        base = ctx.__enter__()
        client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
        clients.append((client, ctx))
        return client

    yield start
    for client, ctx in reversed(clients):
        client.close()
        ctx.__exit__(None, None, None)
