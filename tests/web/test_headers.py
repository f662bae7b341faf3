"""Every answer carries the security headers, errors included; Host is ours; HSTS over
https. Through a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from newsletter.config import Settings
from newsletter.web import Limits, Pipeline
from tests.support.webserver import FORM, Serve, confirm_path, unsubscribe_path, web_settings


def assert_protected(response: httpx.Response, *, personal: bool = True) -> None:
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, response.status_code
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    if personal:
        assert headers["cache-control"] == "no-store", response.status_code


def _boom(*args: object, **kwargs: object) -> str:
    raise RuntimeError("a bug on our side")


def test_every_error_carries_the_headers(serve: Serve, wsettings: Settings) -> None:
    """Before: the 500 answer (our 'something went wrong' page) had none of them."""
    broken = Pipeline(confirm_token=_boom)
    client = serve(limits=Limits(pages_per_client=(3, 60.0)), pipeline=broken)
    answers = {
        404: client.get("/nope"),
        405: client.delete("/subscribe"),
        413: client.post("/subscribe", content=b"x" * (70 * 1024), headers=FORM),
        503: client.post(confirm_path(wsettings, "carol@example.com")),  # the 500 page
        400: client.get("/u/not-a-token"),
    }
    for _ in range(3):
        client.get("/subscribe")
    answers[429] = client.get("/subscribe")
    for status, response in answers.items():
        assert response.status_code == status
        assert_protected(response)
    assert "Something went wrong on our side" in answers[503].text


def test_a_missing_static_file_is_not_cached(serve: Serve) -> None:
    client = serve()
    assert client.get("/static/web.css").headers["cache-control"] == "public, max-age=3600"
    missing = client.get("/static/nope.css")
    assert missing.status_code == 404
    assert_protected(missing)


def test_token_pages_send_no_referrer_and_are_not_stored(serve: Serve, wsettings: Settings) -> None:
    client = serve()
    for path in (
        unsubscribe_path(wsettings, "alice@example.org"),
        confirm_path(wsettings, "carol@example.com"),
        "/subscribe",
    ):
        page = client.get(path)
        assert page.status_code == 200
        assert_protected(page)


# Host ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/archive", "/u/x/"])
def test_a_foreign_host_is_refused_not_echoed(serve: Serve, path: str) -> None:
    """Before: GET /archive with Host: evil.example redirected to http://evil.example/."""
    client = serve()
    response = client.get(path, headers={"host": "evil.example"})
    assert response.status_code == 400
    assert "evil.example" not in response.headers.get("location", "")
    assert "evil" not in response.text
    assert_protected(response)


def test_our_own_host_is_served(serve: Serve, home: Path) -> None:
    client = serve()
    (home / "build" / "archive").mkdir(parents=True)
    for host in ("digest.example.org", "digest.example.org:443", "DIGEST.example.org"):
        response = client.get("/archive", headers={"host": host})
        assert response.status_code == 307, host
        assert response.headers["location"].lower().startswith("http://digest.example.org")


def test_loopback_names_only_from_this_machine(serve: Serve) -> None:
    client = serve(web_settings(None, trusted_proxies="127.0.0.2"))
    assert client.get("/subscribe", headers={"host": "localhost"}).status_code == 200
    # through the proxy, a visitor elsewhere cannot borrow the loopback name
    via_proxy = httpx.Client(
        base_url=str(client.base_url),
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
    )
    with via_proxy:
        spoof = via_proxy.get(
            "/subscribe", headers={"host": "localhost", "x-forwarded-for": "203.0.113.5"}
        )
        assert spoof.status_code == 200  # the TCP peer is local: it may name itself
        real = via_proxy.get(
            "/subscribe",
            headers={"host": "digest.example.org", "x-forwarded-for": "203.0.113.5"},
        )
        assert real.status_code == 200


def test_any_host_without_a_public_url(serve: Serve) -> None:
    client = serve(web_settings(None, public_url=None))
    assert client.get("/subscribe", headers={"host": "dev.example.test"}).status_code == 200


# HSTS ---------------------------------------------------------------------------------------
def test_hsts_only_over_https_as_the_trusted_proxy_reports_it(serve: Serve) -> None:
    """Before: never sent. A forged X-Forwarded-Proto from an untrusted peer changes nothing."""
    trusting = serve(web_settings(None, trusted_proxies="127.0.0.1"))
    https = trusting.get("/subscribe", headers={"x-forwarded-proto": "https"})
    assert https.headers["strict-transport-security"] == "max-age=31536000"
    assert "secure" in https.headers["set-cookie"].lower()
    error = trusting.get("/nope", headers={"x-forwarded-proto": "https"})
    assert error.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in trusting.get("/subscribe").headers
    untrusting = serve(web_settings(None))
    forged = untrusting.get("/subscribe", headers={"x-forwarded-proto": "https"})
    assert "strict-transport-security" not in forged.headers
