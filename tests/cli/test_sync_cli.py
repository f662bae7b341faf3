"""`newsletter subscribers sync` and the folds around list commands: exact messages."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from newsletter.audience.subscribers import SubscriberStore
from newsletter.cli.app import app
from newsletter.config import load_settings

runner = CliRunner()
CSV = "subscribers/subscribers.csv"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["subscribers", *args])
    return result.exit_code, result.stdout, result.stderr


def test_sync_folds_and_says_what_it_put_back(home: Path) -> None:
    assert run("sync") == (0, f"{CSV}: up to date (no ledger changes to fold)\n", "")
    store = SubscriberStore.from_settings(load_settings())
    store.suppress({"alice@example.org": ("unsubscribed", "one-click")})
    store.fold()
    path = home / CSV
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Alice Archer,unsubscribed", "Alice Archer,active"))
    store.suppress({"grace@example.com": ("bounced", "550 5.1.1")})
    code, out, err = run("sync")
    assert code == 0
    assert out == f"{CSV}: 1 ledger change folded, 1 applied, 1 re-applied (1 backup kept)\n"
    assert err.splitlines() == [
        f"1 ledger change(s) folded into {CSV}; 1 re-applied after a hand edit undid them",
        f"  re-applied: {CSV}:2: alice@example.org: unsubscribed again (the file said active)",
    ]
    assert "alice@example.org,Alice Archer,unsubscribed," in path.read_text(encoding="utf-8")


def test_list_commands_see_the_ledger_and_fold_it(home: Path) -> None:
    store = SubscriberStore.from_settings(load_settings())
    store.suppress({"alice@example.org": ("unsubscribed", "one-click")})
    code, out, _ = run("stats")
    assert code == 0 and "unsubscribed       2" in out
    assert "alice@example.org,Alice Archer,unsubscribed," in (home / CSV).read_text("utf-8")


def test_sync_refuses_a_file_without_a_ledger(home: Path) -> None:
    code, _, err = run("--file", "other.csv", "sync")
    assert code == 1
    assert "other.csv: only the project's list has a ledger to fold" in err


def test_sync_has_help() -> None:
    code, out, _ = run("sync", "--help")
    assert code == 0 and "Usage: newsletter subscribers sync" in out and "said so." in out
