"""SendGrid holds a scheduled send itself (send_at + batch_id) and cancels it; --sandbox."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from tests.support.archivekit import write_variant
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import SEND_ENV, write_subscribers

runner = CliRunner()
KEY = "SG.schedule-test"


@pytest.fixture
def server() -> Iterator[SendGridServer]:
    with SendGridServer(KEY) as srv:
        yield srv


@pytest.fixture
def home5(home: Path, server: SendGridServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k, v in SEND_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "sendgrid")
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", server.url)
    write_subscribers(home / "subscribers" / "subscribers.csv", 5)
    write_variant(home, "2.20", "2023-10-27")
    return home


def in_hours(hours: float) -> str:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    return when.strftime("%Y-%m-%d %H:%M")


def test_a_schedule_within_72_hours_is_held_by_sendgrid(
    home5: Path, server: SendGridServer
) -> None:
    at = in_hours(5)
    result = runner.invoke(app, ["send", "vol-2.20", "--at", at, "--tz", "UTC", "--yes"])
    assert result.exit_code == 0, result.output
    assert "scheduled with SendGrid: vol-2.20 for " in result.stdout
    (batch_id,) = server.batches
    bodies = {id(a.body): a.body for a in server.accepted}
    assert len(server.accepted) == 5
    expected = int(dt.datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC).timestamp())
    for body in bodies.values():
        assert body["send_at"] == expected
        assert body["batch_id"] == batch_id
    status = json.loads(runner.invoke(app, ["status", "vol-2.20", "--json"]).stdout)
    assert status["schedule"]["via"] == "sendgrid"
    assert status["schedule"]["state"] == "scheduled"
    assert status["counts"]["sent"] == 5
    # run-due leaves it alone: SendGrid sends it
    assert runner.invoke(app, ["run-due"]).stdout == "nothing due\n"


def test_cancel_calls_sendgrid_and_the_readers_are_pending_again(
    home5: Path, server: SendGridServer
) -> None:
    assert runner.invoke(
        app, ["send", "vol-2.20", "--at", in_hours(2), "--tz", "UTC", "--yes"]
    ).exit_code == 0
    (batch_id,) = server.batches
    result = runner.invoke(app, ["cancel", "vol-2.20"])
    assert result.exit_code == 0, result.output
    assert server.batches[batch_id] == "cancel"
    status = json.loads(runner.invoke(app, ["status", "vol-2.20", "--json"]).stdout)
    assert status["schedule"]["state"] == "cancelled"
    assert status["schedule"]["note"] == "batch cancelled at SendGrid; 5 back to pending"
    assert status["counts"]["pending"] == 5 and status["counts"]["sent"] == 0
    # and a plain send now reaches everyone, with no schedule on the requests
    again = runner.invoke(app, ["send", "vol-2.20", "--yes"])
    assert again.exit_code == 0, again.output
    assert len(server.accepted) == 10
    assert all("send_at" not in a.body for a in server.accepted[5:])


def test_beyond_72_hours_the_schedule_is_local(home5: Path, server: SendGridServer) -> None:
    result = runner.invoke(app, ["send", "vol-2.20", "--at", in_hours(100), "--tz", "UTC",
                                 "--yes"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "it goes out when `newsletter run-due` runs" in result.stdout
    assert server.accepted == [] and server.batches == {}


def test_sandbox_validates_everything_and_records_nothing(
    home5: Path, server: SendGridServer
) -> None:
    result = runner.invoke(app, ["send", "vol-2.20", "--sandbox", "--yes"])
    assert result.exit_code == 0, result.output
    assert "SANDBOX: nothing is delivered" in result.stdout
    assert "sandbox: SendGrid validated every request and delivered nothing" in result.stdout
    assert server.sandboxed == 1 and server.accepted == []
    status = runner.invoke(app, ["status", "vol-2.20"])
    assert "not sent yet" in status.stdout
    assert not (home5 / "build" / "archive" / "vol-2.20.html").exists()
    assert not list((home5 / ".newsletter").glob("sandbox-*"))


def test_sandbox_needs_sendgrid(home5: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "outbox")
    result = runner.invoke(app, ["send", "vol-2.20", "--sandbox", "--yes"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --sandbox is SendGrid's sandbox mode")


def test_local_schedule_keeps_a_sendgrid_send_for_run_due(
    home5: Path, server: SendGridServer
) -> None:
    """Copies SendGrid holds have left; a local schedule checks unsubscribes at send time."""
    result = runner.invoke(app, ["send", "vol-2.20", "--at", in_hours(5), "--tz", "UTC",
                                 "--local-schedule", "--yes"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "it goes out when `newsletter run-due` runs" in result.stdout
    assert server.accepted == [] and server.batches == {}
