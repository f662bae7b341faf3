"""`newsletter subscribers ...` through the real CLI: exact messages and exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import filelock
from typer.testing import CliRunner

from newsletter.audience.subscribers import SubscriberStore
from newsletter.cli.app import app

DATA = Path(__file__).resolve().parent.parent / "data" / "subscribers"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["subscribers", *args])
    return result.exit_code, result.stdout, result.stderr


def test_every_command_has_help() -> None:
    for command in ("list", "show", "add", "remove", "import", "export", "stats", "check"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "--file" in out, command


def test_check_on_the_shipped_sample(home: Path) -> None:
    assert run("check") == (0, "subscribers/subscribers.csv: 8 rows, no problems\n", "")


def test_check_reports_every_problem_and_exits_1(home: Path) -> None:
    shutil.copyfile(DATA / "spreadsheet.csv", "s.csv")
    code, out, err = run("--file", "s.csv", "check")
    assert code == 1
    assert out.splitlines() == [
        "s.csv:5: email: ALICE@example.org is a duplicate of line 2",
        "s.csv:6: email: not a valid address 'not-an-address': An email address must have "
        "an @-sign.",
        "s.csv:8: status: unknown status 'paused' (expected one of pending, active, "
        "unsubscribed, bounced, complained)",
        "s.csv:9: subscribed_at: not an ISO 8601 date '01/02/2024' (e.g. 2024-05-01T09:30:00Z)",
        "s.csv:12: email: bob@example.com is a duplicate of line 3",
        "s.csv:13: email: not a valid address 'user@@example.org': The part after the @-sign "
        "contains invalid characters: '@'.",
    ]
    assert err == "6 errors in s.csv (12 rows)\n"


def test_check_refuses_legacy_encoding_with_a_hint(home: Path) -> None:
    code, out, err = run("check", "--file", str(DATA / "legacy-cp1252.csv"))
    assert code == 1
    assert out == (
        f"{DATA / 'legacy-cp1252.csv'}:2: not UTF-8 text (byte 0xe9 at column 21); it looks "
        "like a legacy Windows-1252 export\n"
    )
    assert err.startswith('hint: save it from the spreadsheet as "CSV UTF-8"')


def test_add_then_duplicate_add(home: Path) -> None:
    code, out, _ = run("add", "New.Person@example.org", "--name", "新 人")
    assert (code, out) == (
        0,
        "added New.Person@example.org (active) on line 10 of subscribers/subscribers.csv\n",
    )
    code, out, err = run("add", "new.person@EXAMPLE.org")
    assert (code, out) == (1, "")
    assert err == (
        "error: subscribers/subscribers.csv:10: New.Person@example.org is already on the "
        "list (status: active)\n"
    )
    code, _, err = run("add", "not-an-address")
    assert code == 1
    assert err == (
        "error: not a valid address 'not-an-address': An email address must have an @-sign.\n"
    )


def test_remove_and_purge(home: Path) -> None:
    assert run("remove", "alice@example.org") == (
        0,
        "unsubscribed alice@example.org in subscribers/subscribers.csv\n",
        "",
    )
    code, out, err = run("remove", "--purge", "ALICE@example.org")
    assert code == 0
    assert out == (
        "purged ALICE@example.org: deleted 1 row (line 2) from subscribers/subscribers.csv\n"
        "forgot ALICE@example.org in no journal or event store (none kept yet)\n"
    )
    assert "backups in .newsletter/backups still hold it" in err
    assert run("remove", "alice@example.org") == (
        1,
        "",
        "error: subscribers/subscribers.csv: alice@example.org is not on the list\n",
    )
    assert "alice@" not in Path("subscribers/subscribers.csv").read_text()


def test_lock_timeout_exits_7(home: Path) -> None:
    lock = filelock.FileLock("subscribers/subscribers.csv.lock")
    with lock:
        code, out, err = run("--lock-timeout", "0.1", "add", "z@example.org")
    assert (code, out) == (7, "")
    assert err.splitlines()[0] == (
        "error: subscribers/subscribers.csv.lock: another writer has held the subscriber "
        "lock for 0.1s"
    )


def test_import_dry_run_then_real(home: Path) -> None:
    Path("new.txt").write_text(
        "# from the conference sign-up sheet\n"
        "zoe@example.org\n"
        "Bob B <BOB.BROWN@example.org>\n"
        "dave@example.org\n"
        "bad@@example.org\n"
        "grace@example.com\n"
        "zoe@example.org\n",
        encoding="utf-8",
    )
    before = Path("subscribers/subscribers.csv").read_bytes()
    code, out, err = run("import", "new.txt", "--dry-run")
    assert code == 1
    assert out == (
        "reading new.txt as a plain list of addresses\n"
        "  add     new.txt:2: zoe@example.org: active\n"
        "  update  new.txt:3: BOB.BROWN@example.org: name 'Bob Brown' -> 'Bob B'\n"
        "dry run, nothing written: 1 added, 1 updated, 2 unchanged, 0 skipped, 2 invalid\n"
    )
    assert err == (
        "  invalid new.txt:5: email: not a valid address 'bad@@example.org': The part after "
        "the @-sign contains invalid characters: '@'.\n"
        "  invalid new.txt:7: email: zoe@example.org repeats line 2\n"
        "2 invalid lines not imported: fix them and re-run\n"
    )
    assert Path("subscribers/subscribers.csv").read_bytes() == before
    code, out, _ = run("import", "new.txt", "--status", "active")
    assert code == 1
    assert out.splitlines()[-1] == (
        "imported new.txt into subscribers/subscribers.csv: 1 added, 1 updated, 1 unchanged, "
        "1 skipped, 2 invalid"
    )
    assert (
        "  skip    new.txt:4: dave@example.org: unsubscribed; not made active again without "
        "--force" in out
    )
    store = SubscriberStore(Path("subscribers/subscribers.csv"))
    dave = store.get("dave@example.org")
    assert dave is not None and dave.status == "unsubscribed"
    code, out, _ = run("import", "new.txt", "--status", "active", "--force")
    dave = store.get("dave@example.org")
    assert dave is not None and dave.status == "active"


def test_export_neutralises_formulas(home: Path) -> None:
    shutil.copyfile(DATA / "spreadsheet.csv", "s.csv")
    code, out, err = run("export", "--file", "s.csv", "--status", "active")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "E-mail , Name ,Status,Source,Subscribed At,confirmed_at,updated_at,Note,Member ID"
    )
    assert lines[4] == (
        'eve@example.com,"\'=HYPERLINK(""http://example.com"",""click"")",active,web,,,,,M-006'
    )
    assert len(lines) == 5
    assert err == "6 rows with problems not exported: run `newsletter subscribers check`\n"
    code, _, err = run("export", "--file", "s.csv", "--out", "out.csv")
    assert (code, err.splitlines()[0]) == (0, "exported 6 rows to out.csv")
    data = Path("out.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data


def test_list_and_stats(home: Path) -> None:
    code, out, _ = run("list", "--format", "csv", "--status", "active", "--search", "山田")
    assert code == 0
    assert out == (
        "email,name,status,source,subscribed_at,confirmed_at,updated_at,note\n"
        "hanako.yamada@example.com,山田 花子,active,web,2024-02-11T03:15:00Z,"
        "2024-02-11T03:20:12Z,2024-02-11T03:20:12Z,\n"
    )
    code, out, _ = run("list")
    assert code == 0 and out.endswith("8 subscribers in subscribers/subscribers.csv\n")
    assert "山田 花子" in out
    code, out, err = run("list", "--status", "gone")
    assert code == 1
    assert err == (
        "error: --status: unknown status gone (expected one of pending, active, unsubscribed, "
        "bounced, complained)\n"
    )
    code, out, _ = run("stats")
    assert code == 0
    assert out.splitlines()[0] == "subscribers/subscribers.csv: 8 rows, 8 valid"
    assert "active             4" in out and "example.org      4" in out


def test_import_does_not_confirm_a_pending_address_without_force(home: Path) -> None:
    # review finding: an old spreadsheet saying "active" turned a pending (unconfirmed)
    # row active; double opt-in means only the person confirms, or an admin with --force
    Path("old.csv").write_text("email,name,status\ncarol@example.com,Carol Chen,active\n")
    _code, out, _ = run("import", "old.csv")
    assert (
        "  skip    old.csv:2: carol@example.com: pending (not confirmed); not made active "
        "without --force" in out
    )
    assert "0 updated, 0 unchanged, 1 skipped" in out.splitlines()[-1]
    store = SubscriberStore(Path("subscribers/subscribers.csv"))
    carol = store.get("carol@example.com")
    assert carol is not None and carol.status == "pending" and not carol.confirmed_at
    run("import", "old.csv", "--force")
    carol = store.get("carol@example.com")
    assert carol is not None and carol.status == "active" and carol.confirmed_at


IMPORTS = DATA.parent / "imports"


def test_import_mailchimp_unsubscribed_dry_run_reports_every_column(home: Path) -> None:
    shutil.copyfile(IMPORTS / "mailchimp_unsubscribed_members_export_4f2a9c1d7e.csv", "u.csv")
    code, out, err = run("import", "u.csv", "--dry-run", "--status", "active")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "reading u.csv as Mailchimp export (unsubscribed members): every row unsubscribed",
        "  mapped: Email Address -> email, First Name -> first_name, Last Name -> last_name, "
        "OPTIN_TIME -> subscribed_at, CONFIRM_TIME -> confirmed_at, NOTES -> note, TAGS -> tags",
        "  kept as extra columns: MEMBER_RATING, OPTIN_IP, CONFIRM_IP, UNSUB_TIME, "
        "UNSUB_CAMPAIGN_TITLE, UNSUB_CAMPAIGN_ID, UNSUB_REASON, LAST_CHANGED, LEID, EUID",
        "  ignored (empty in every row): Address, Phone Number, LATITUDE, LONGITUDE, GMTOFF, "
        "DSTOFF, TIMEZONE, CC, REGION, UNSUB_REASON_OTHER",
        "  add     u.csv:2: anna.berg@example.org: unsubscribed",
        "  update  u.csv:3: dave@example.org: name 'Dave Diaz' -> 'Dave Davis', MEMBER_RATING, "
        "UNSUB_TIME, UNSUB_CAMPAIGN_TITLE, UNSUB_CAMPAIGN_ID, UNSUB_REASON, LAST_CHANGED, "
        "LEID, EUID",
        "dry run, nothing written: 1 added, 1 updated, 0 unchanged, 0 skipped, 0 invalid",
    ]
    code, _out, _err = run("import", "u.csv")
    store = SubscriberStore(Path("subscribers/subscribers.csv"))
    assert [(s.email, s.status) for s in store.iter_valid() if s.source == "mailchimp"] == [
        ("anna.berg@example.org", "unsubscribed")
    ]
    assert "anna.berg@example.org" not in {s.email for s in store.iter_active()}


def test_import_without_an_address_column_names_the_columns(home: Path) -> None:
    Path("team.csv").write_text("Full name,Work email\nAda L,ada@example.org\n", encoding="utf-8")
    code, out, err = run("import", "team.csv")
    assert (code, out) == (1, "")
    assert err == (
        "error: team.csv:1: no address column found (columns: Full name, Work email)\n"
        'hint: name the column that holds the addresses: --map "COLUMN=email"\n'
    )
    code, out, _ = run("import", "team.csv", "--map", "Work email=email")
    assert code == 0
    assert out.splitlines()[1] == "  mapped: Full name -> name, Work email -> email"
    ada = SubscriberStore(Path("subscribers/subscribers.csv")).get("ada@example.org")
    assert ada is not None and (ada.name, ada.status) == ("Ada L", "active")


def test_export_for_listmonk_and_mailchimp(home: Path) -> None:
    shutil.copyfile(IMPORTS / "mailchimp_subscribed_members_export_4f2a9c1d7e.csv", "s.csv")
    assert run("import", "s.csv")[0] == 0
    code, out, _ = run("export", "--format", "listmonk", "--status", "active")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "email,name,attributes"
    assert lines[-3] == (
        'ken.sato@example.jp,Ken Sato,"{""status"": ""active"", ""source"": ""mailchimp"", '
        '""subscribed_at"": ""2023-03-01T09:15:02Z"", ""confirmed_at"": ""2023-03-01T09:16:40Z"", '
        '""tags"": [""Board"", ""Tokyo office""], ""MEMBER_RATING"": ""4"", ""OPTIN_IP"": '
        '""198.51.100.23"", ""CONFIRM_IP"": ""198.51.100.23"", ""LAST_CHANGED"": '
        '""2024-01-10 11:00:00"", ""LEID"": ""118855301"", ""EUID"": ""a1b2c3d4e5""}"'
    )
    assert len(lines) == 1 + 4 + 3  # header, the sample's 4 active rows, the 3 imported
    code, out, _ = run("export", "--format", "mailchimp", "--status", "active")
    lines = out.splitlines()
    assert lines[0] == (
        "Email Address,First Name,Last Name,Tags,OPTIN_TIME,CONFIRM_TIME,MEMBER_RATING,"
        "OPTIN_IP,CONFIRM_IP,LAST_CHANGED,LEID,EUID,mailchimp_Address"
    )
    assert lines[1] == (
        "alice@example.org,Alice,Archer,,2024-01-05 09:00:00,2024-01-05 09:00:00,,,,,,,"
    )
    assert lines[-2] == (
        "Maria.Lopez@example.com,María,López,Donors 2023,2022-11-20 18:02:11,"
        "2022-11-20 18:05:00,3,203.0.113.9,203.0.113.9,2023-12-01 08:30:00,118855302,"
        'f6e5d4c3b2,"12 Main St, Springfield"'
    )
    # what comes back in is what went out: the Mailchimp file reads as a Mailchimp export
    Path("back.csv").write_text(out, encoding="utf-8")
    code, out, _ = run("--file", "new.csv", "import", "back.csv")
    assert code == 0
    assert (
        out.splitlines()[0]
        == "reading back.csv as Mailchimp export (subscribed members): every row active"
    )
    ken = SubscriberStore(Path("new.csv")).get("ken.sato@example.jp")
    assert ken is not None and (ken.name, ken.confirmed_at) == ("Ken Sato", "2023-03-01T09:16:40Z")
