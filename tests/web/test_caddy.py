"""The deployment in deploy/: real Caddy with TLS (its own CA) in front of a real
``newsletter serve`` process, driven like a mail provider and a reader would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.config import load_settings
from tests.conftest import GOLDEN_SETTINGS, ROOT
from tests.support.caddy import Deployment, caddy_and_serve
from tests.support.webserver import (
    FORM,
    ONE_CLICK,
    csv_row,
    outbox_messages,
    subscribe_form,
    unsubscribe_path,
)

SECRET = str(GOLDEN_SETTINGS["secret_key"])
HSTS = "max-age=31536000"


@pytest.fixture
def deployment(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    env = {
        "NEWSLETTER_SECRET_KEY": SECRET,
        "NEWSLETTER_FROM": str(GOLDEN_SETTINGS["sender"]),
        "NEWSLETTER_CONTACT": str(GOLDEN_SETTINGS["contact"]),
        "NEWSLETTER_TRUSTED_PROXIES": "127.0.0.1",
    }
    with caddy_and_serve(home, tmp_path_factory.mktemp("deploy"), env) as running:
        yield running


def test_one_click_unsubscribe_through_caddy(deployment: Deployment, home: Path) -> None:
    settings = load_settings(None, public_url=deployment.public_url, secret_key=SECRET)
    path = unsubscribe_path(settings, "alice@example.org")
    with deployment.client() as provider:  # a mail provider's RFC 8058 POST, over TLS
        response = provider.post(path, content=ONE_CLICK, headers=FORM)
    assert response.status_code == 200, response.text
    assert response.text == "You have been unsubscribed.\n"
    assert response.headers["strict-transport-security"] == HSTS
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert ",unsubscribed," in csv_row(home, "alice@example.org")


def test_signup_and_confirm_through_caddy(deployment: Deployment, home: Path) -> None:
    with deployment.client() as reader:
        form = reader.get("/subscribe")
        assert "; secure" in form.headers["set-cookie"].lower()  # https as Caddy reported it
        csrf = subscribe_form(reader)
        done = reader.post("/subscribe", data={"csrf": csrf, "email": "new.reader@example.net"})
        assert done.status_code == 200
        link = _wait_for_link(home, "new.reader@example.net")
        # the mailed link points at the public https URL, the one Caddy answers
        assert link.startswith(deployment.public_url + "/confirm/")
        confirmed = reader.post(link.removeprefix(deployment.public_url))
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.headers["strict-transport-security"] == HSTS
    assert ",active," in csv_row(home, "new.reader@example.net")


def test_the_limiter_counts_the_forwarded_client(deployment: Deployment, home: Path) -> None:
    """serve sees only Caddy (127.0.0.1); the budgets must count the visitor Caddy names.
    A visitor's own X-Forwarded-For is dropped by Caddy, so it buys nothing."""
    with deployment.client(source="127.0.0.2") as loud:
        csrf = subscribe_form(loud)
        codes = [
            loud.post(
                "/subscribe",
                data={"csrf": csrf, "email": f"x{i}@example.net"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},  # forged: ignored
            ).status_code
            for i in range(11)
        ]
    assert codes == [200] * 10 + [429]
    with deployment.client(source="127.0.0.3") as quiet:
        csrf = subscribe_form(quiet)
        answer = quiet.post("/subscribe", data={"csrf": csrf, "email": "quiet@example.net"})
    assert answer.status_code == 200


def test_hosts_and_redirects_through_caddy(deployment: Deployment, home: Path) -> None:
    (home / "build" / "archive").mkdir(parents=True)
    with deployment.client() as reader:
        redirect = reader.get("/archive")
    assert redirect.status_code == 307
    # https (as Caddy reported it) and the public host, never anything a visitor typed
    assert redirect.headers["location"] == deployment.public_url + "/archive/"
    assert redirect.headers["strict-transport-security"] == HSTS


def test_the_deploy_files_agree_with_the_settings() -> None:
    unit = (ROOT / "deploy" / "newsletter-serve.service").read_text()
    assert "Environment=NEWSLETTER_TRUSTED_PROXIES=127.0.0.1" in unit
    assert re.search(r"^ExecStart=\S+/newsletter serve$", unit, re.MULTILINE)
    assert "Environment=NEWSLETTER_SERVE_HOST=127.0.0.1" in unit
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy {$NEWSLETTER_UPSTREAM:127.0.0.1:8000}" in caddyfile
    assert re.search(r"^\s*log\b", caddyfile, re.MULTILINE) is None  # tokens in access logs
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["newsletter", "serve"]' in dockerfile
    example = (ROOT / ".env.example").read_text()
    assert "NEWSLETTER_TRUSTED_PROXIES" in example


def _wait_for_link(home: Path, email: str, timeout: float = 10.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for to, body in outbox_messages(home):
            if email in to:
                match = re.search(r"https://\S+/confirm/[A-Za-z0-9_.%-]+", body)
                assert match, body
                return match.group(0)
        time.sleep(0.05)
    raise AssertionError(f"no confirmation mailed to {email}")
