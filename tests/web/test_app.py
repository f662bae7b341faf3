"""`newsletter serve` as a whole: body limits, the archive, static files and errors,
configuration, logging."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app as cli_app
from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.web import RedactTokens, create_app, redact_path
from tests.support.webserver import FORM, Serve, unsubscribe_path, web_settings


# Body limits ----------------------------------------------------------------------------
def test_form_bodies_are_limited(serve: Serve, wsettings: Settings) -> None:
    client = serve()
    big = b"email=" + b"a" * (70 * 1024)
    assert client.post("/subscribe", content=big, headers=FORM).status_code == 413
    path = unsubscribe_path(wsettings, "alice@example.org")
    assert client.post(path, content=big, headers=FORM).status_code == 413


# Archive, static files, errors -----------------------------------------------------------
def test_archive_is_mounted(serve: Serve, wsettings: Settings) -> None:
    client = serve()
    assert client.get("/archive/vol-2.19.html").status_code == 404  # not built yet
    folder = wsettings.build_dir / "archive"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<!DOCTYPE html><title>Archive</title>index")
    (folder / "vol-2.19.html").write_text('<p style="color:red">issue</p>')
    issue = client.get("/archive/vol-2.19.html")
    assert issue.status_code == 200 and "issue" in issue.text
    assert "'unsafe-inline'" in issue.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in issue.headers["content-security-policy"]
    assert "index" in client.get("/archive/").text
    missing = client.get("/archive/vol-9.99.html")
    assert missing.status_code == 404 and "Page not found" in missing.text


def test_static_files_and_not_found(serve: Serve) -> None:
    client = serve()
    css = client.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "#0b2545" in css.text and "#bc002d" in css.text and "@import" not in css.text
    assert client.get("/static/favicon.svg").status_code == 200
    assert client.get("/static/base.html.j2").status_code == 404
    assert client.get("/static/../web/base.html.j2").status_code == 404
    missing = client.get("/nope")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert client.delete("/subscribe").status_code == 405


# Configuration, logging ------------------------------------------------------------------
def test_create_app_needs_the_secret_key(home: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        create_app(web_settings(None, secret_key=None))
    with pytest.raises(Exception, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        create_app(web_settings("bm90IGEga2V5"))


def test_serve_command_refuses_to_start_without_a_secret(home: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--port", "0"])
    assert result.exit_code == 3
    assert "error: NEWSLETTER_SECRET_KEY is not set" in result.output
    help_text = CliRunner().invoke(cli_app, ["serve", "--help"]).output
    assert "--host" in help_text and "--port" in help_text


def test_access_log_never_shows_tokens_or_the_inbound_secret() -> None:
    assert redact_path("/u/abc.def") == "/u/[redacted]"
    assert redact_path("/confirm/abc.def?x=1") == "/confirm/[redacted]?x=1"
    assert redact_path("/inbound/s3cret") == "/inbound/[redacted]"
    assert redact_path("/subscribe") == "/subscribe"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/u/tok.en", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert "tok.en" not in record.getMessage()
