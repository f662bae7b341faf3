"""What a run says and records as it ends: exit codes, hints with each count, `status`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from tests.cli.test_send_cli import smtp_env
from tests.support.sendkit import address, write_subscribers
from tests.support.smtp_server import SmtpServer

runner = CliRunner()


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as srv:
        yield srv


@pytest.fixture
def env(home: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = smtp_env(server.port) | {"NEWSLETTER_CONCURRENCY": "1"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    write_subscribers(home / "subscribers" / "subscribers.csv", 3)
    return values


def test_every_recipient_uncertain_is_a_partial_send_not_a_failure(
    env: dict[str, str], server: SmtpServer
) -> None:
    server.handler.drop_after_data = 3  # each message accepted, then the line drops
    result = runner.invoke(app, ["send", "vol-2.19", "--yes"])
    assert result.exit_code == 5, result.output
    assert "none of the" not in result.stderr
    assert result.stderr.startswith("error: vol-2.19: 0 failed, 3 uncertain, 0 sent\n")
    assert "3 uncertain: may have been delivered (--resend-uncertain)" in result.stderr
    status = runner.invoke(app, ["status", "vol-2.19"])
    assert "(partial)" in status.stdout
    assert "(interrupted)" not in status.stdout


def test_hints_name_failed_retryable_and_uncertain_separately(
    env: dict[str, str], server: SmtpServer
) -> None:
    server.handler.sticky[address(0)] = "550 5.1.1 no such user"
    server.handler.sticky[address(1)] = "451 4.3.0 try again later"
    result = runner.invoke(app, ["send", "vol-2.19", "--yes"])
    assert result.exit_code == 5, result.output
    hint = result.stderr.splitlines()[-1]
    assert "1 failed temporarily (a re-run retries them)" in hint
    assert "1 failed permanently (--retry-failed)" in hint
    assert "0 not handed off" not in hint


def test_a_transport_that_refuses_everything_is_recorded_as_failed(
    env: dict[str, str], server: SmtpServer
) -> None:
    for i in range(3):
        server.handler.sticky[address(i)] = "550 5.7.1 relaying denied"
    result = runner.invoke(app, ["send", "vol-2.19", "--yes"])
    assert result.exit_code == 6, result.output
    assert result.stderr.startswith("error: vol-2.19: none of the 3 recipients was sent\n")
    report = runner.invoke(app, ["status", "vol-2.19", "--json"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)
    assert data["last_run"]["result"] == "failed"
    assert data["counts"]["failed"] == 3
    assert data["counts"]["failed_permanent"] == 3
    assert [r["email"] for r in data["failed"]] == [address(i) for i in range(3)]


def test_a_clean_run_is_ok_in_status_and_json(env: dict[str, str]) -> None:
    assert runner.invoke(app, ["send", "vol-2.19", "--yes"]).exit_code == 0
    status = runner.invoke(app, ["status", "vol-2.19"])
    assert "(ok)" in status.stdout
    data = json.loads(runner.invoke(app, ["status", "vol-2.19", "--json"]).stdout)
    assert data["issue"] == "vol-2.19"
    assert data["counts"]["sent"] == 3
    assert data["last_run"]["transport"] == "smtp"
    assert data["failed"] == [] and data["uncertain"] == []


def test_status_json_of_an_unsent_issue(home: Path) -> None:
    data = json.loads(runner.invoke(app, ["status", "vol-2.19", "--json"]).stdout)
    assert data == {
        "issue": "vol-2.19",
        "sent_before": False,
        "counts": {},
        "last_run": None,
        "failed": [],
        "uncertain": [],
        "schedule": None,
    }
