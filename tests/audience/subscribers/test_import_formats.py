"""Other tools' exports read as they are written: source found, statuses, names, consent
dates, tags and every other column, from fixtures built on each product's documented
export columns (tests/data/imports; no real people, example.* addresses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.audience.subscribers import (
    AddressError,
    ImportEntry,
    SubscriberStore,
    read_import,
)
from newsletter.audience.subscribers.cellvalues import normalize_date
from newsletter.audience.subscribers.formats import parse_map

DATA = Path(__file__).resolve().parents[2] / "data" / "imports"
MAILCHIMP = "mailchimp_{}_members_export_4f2a9c1d7e.csv"


def entries(name: str, **options: object) -> dict[str, ImportEntry]:
    result = read_import(DATA / name, **options)  # type: ignore[arg-type]
    assert result.problems == []
    return {e.email: e for e in result.entries}


def uses(name: str) -> dict[str, str]:
    return {c.header: c.use for c in read_import(DATA / name).columns}


def test_mailchimp_subscribed_keeps_names_consent_dates_tags_and_every_column() -> None:
    result = read_import(DATA / MAILCHIMP.format("subscribed"))
    assert result.format == "Mailchimp export (subscribed members)"
    assert result.status_note == "every row active"
    ken, maria, tom = result.entries
    assert (ken.email, ken.name, ken.status, ken.source) == (
        "ken.sato@example.jp",
        "Ken Sato",
        "active",
        "mailchimp",
    )
    assert (ken.subscribed_at, ken.confirmed_at) == ("2023-03-01T09:15:02Z", "2023-03-01T09:16:40Z")
    assert ken.tags == "Board; Tokyo office"
    assert dict(ken.extras) == {
        "MEMBER_RATING": "4",
        "OPTIN_IP": "198.51.100.23",
        "CONFIRM_IP": "198.51.100.23",
        "LAST_CHANGED": "2024-01-10 11:00:00",
        "LEID": "118855301",
        "EUID": "a1b2c3d4e5",
    }
    assert (maria.name, maria.note, maria.tags) == (
        "María López",
        "Met at the Tokyo panel",
        "Donors 2023",
    )
    # Mailchimp's "Address" merge field is not our address column: kept under a new name
    assert dict(maria.extras)["mailchimp_Address"] == "12 Main St, Springfield"
    assert (tom.name, tom.confirmed_at, tom.tags) == ("Tom", "", "")
    columns = uses(MAILCHIMP.format("subscribed"))
    assert columns["LATITUDE"] == "ignored" and columns["Phone Number"] == "ignored"
    assert columns["OPTIN_TIME"] == "subscribed_at" and columns["TAGS"] == "tags"


@pytest.mark.parametrize(
    ("kind", "status"), [("unsubscribed", "unsubscribed"), ("cleaned", "bounced")]
)
def test_mailchimp_unsubscribed_and_cleaned_never_come_in_active(kind: str, status: str) -> None:
    result = read_import(DATA / MAILCHIMP.format(kind), status="active")
    assert result.format == f"Mailchimp export ({kind} members)"
    assert result.entries and {e.status for e in result.entries} == {status}
    assert result.status_note == f"every row {status}"


def test_mailchimp_unsubscribed_keeps_the_reason_and_time() -> None:
    anna = entries(MAILCHIMP.format("unsubscribed"))["anna.berg@example.org"]
    assert (anna.subscribed_at, anna.confirmed_at) == (
        "2021-05-04T10:00:00Z",
        "2021-05-04T10:02:13Z",
    )
    extras = dict(anna.extras)
    assert extras["UNSUB_TIME"] == "2023-09-14 16:20:05"
    assert extras["UNSUB_REASON"] == "I no longer want to receive these emails"
    assert extras["UNSUB_CAMPAIGN_TITLE"] == "Vol 2.7"


def test_listmonk_statuses_names_and_attributes() -> None:
    found = entries("listmonk_subscribers.csv")
    assert [(e.status, e.name) for e in found.values()] == [
        ("active", "Lena Fischer"),
        ("unsubscribed", "Sam Reed"),
        ("unsubscribed", "Quinn"),
    ]
    lena = found["lena@example.org"]
    assert lena.subscribed_at == "2023-04-02T10:11:12Z"
    assert dict(lena.extras) == {
        "uuid": "5a3c1f2e-8b4d-4e6f-9a1b-2c3d4e5f6a7b",
        "listmonk_updated_at": "2024-01-05 09:00:00.000000+00",
        "city": "Berlin",
        "projects": "3",
    }


def test_buttondown_subscriber_types() -> None:
    result = read_import(DATA / "buttondown_subscribers.csv")
    assert result.format == "Buttondown export"
    assert [(e.email, e.status) for e in result.entries] == [
        ("reader.one@example.com", "active"),
        ("never.confirmed@example.com", "pending"),
        ("left@example.com", "unsubscribed"),
        ("gone@example.com", "bounced"),
    ]
    one = result.entries[0]
    assert (one.subscribed_at, one.tags) == ("2023-06-01T12:00:00Z", "policy; japan")
    assert dict(one.extras)["company"] == "Acme"
    assert dict(one.extras)["buttondown_source"] == "form"
    assert result.entries[2].note == "left after vol 2.10"


def test_substack_email_disabled_is_unsubscribed() -> None:
    found = entries("substack_email_list.csv")
    assert {e: x.status for e, x in found.items()} == {
        "paid.reader@example.com": "active",
        "free.reader@example.com": "active",
        "muted@example.com": "unsubscribed",
    }
    assert found["paid.reader@example.com"].subscribed_at == "2023-06-01T08:00:00Z"
    assert dict(found["paid.reader@example.com"].extras)["plan"] == "yearly"


def test_google_contacts_first_address_labels_and_pending() -> None:
    result = read_import(DATA / "google_contacts.csv")
    assert result.format == "Google Contacts CSV"
    assert result.status_note.startswith("new rows pending: an address book is not consent")
    assert result.problems == []
    assert [str(w) for w in result.warnings] == [
        f"{DATA / 'google_contacts.csv'}:4: warning: email: no address; skipped"
    ]
    hanako, peter = result.entries
    assert (hanako.email, hanako.name, hanako.status, hanako.tags) == (
        "hanako.y@example.jp",
        "Hanako Yamada",
        "pending",
        "Alliance",
    )
    assert dict(hanako.extras)["google_more_addresses"] == "hanako@example.org"
    assert (peter.name, dict(peter.extras)["E-mail 2 - Value"]) == (
        "Peter J. Parker",
        "pp@example.net",
    )
    # an admin who knows they all opted in says so
    assert {
        e.status for e in read_import(DATA / "google_contacts.csv", status="active").entries
    } == {"active"}


def test_outlook_contacts() -> None:
    result = read_import(DATA / "outlook_contacts.csv")
    assert result.format == "Outlook contacts CSV"
    grace, alan = result.entries
    assert (grace.name, grace.status, grace.tags) == ("Grace Hopper", "pending", "Policy; Press")
    assert dict(grace.extras) == {"Job Title": "Rear Admiral", "Company": "Example Navy"}
    assert (alan.name, alan.note, dict(alan.extras)) == (
        "Alan M. Turing",
        "Met in Kyoto",
        {"E-mail 2 Address": "a.turing@example.net"},
    )


def test_no_address_column_is_one_error_naming_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("Full name,Work email,Team\nAda L,ada@example.org,Ops\n", encoding="utf-8")
    with pytest.raises(AddressError) as caught:
        read_import(path)
    assert caught.value.message == (
        f"{path}:1: no address column found (columns: Full name, Work email, Team)"
    )
    result = read_import(path, mapping=parse_map(["Work email=email", "Team=tags"]))
    assert [(e.email, e.name, e.tags) for e in result.entries] == [
        ("ada@example.org", "Ada L", "Ops")
    ]


def test_map_refuses_unknown_columns_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("email,Team\na@example.org,x\n", encoding="utf-8")
    with pytest.raises(
        AddressError, match=r"no column 'Tean' in the file \(columns: email, Team\)"
    ):
        read_import(path, mapping={"Tean": "tags"})
    with pytest.raises(AddressError, match="unknown field 'group'"):
        read_import(path, mapping={"Team": "group"})
    with pytest.raises(AddressError, match='expected "COLUMN=FIELD"'):
        parse_map(["Team"])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2023-03-01 09:15:02", "2023-03-01T09:15:02Z"),
        ("2023-06-01T08:00:00.000Z", "2023-06-01T08:00:00Z"),
        ("2023-04-02 19:11:12+09:00", "2023-04-02T10:11:12Z"),
        ("2024-05-01", "2024-05-01"),
        ("1700000000", "2023-11-14T22:13:20Z"),
        ("", ""),
        ("last Tuesday", None),
    ],
)
def test_normalize_date(given: str, expected: str | None) -> None:
    assert normalize_date(given) == expected


def test_imports_never_reactivate_and_fill_consent_gaps(tmp_path: Path) -> None:
    store = SubscriberStore(tmp_path / "list.csv")
    store.add("anna.berg@example.org", name="Anna Berg", status="active", source="web")
    store.add("ken.sato@example.jp", name="Ken Sato", status="unsubscribed")
    for kind in ("unsubscribed", "subscribed", "cleaned"):
        found = read_import(DATA / MAILCHIMP.format(kind))
        store.import_entries(found.entries)
    anna = store.get("anna.berg@example.org")
    ken = store.get("ken.sato@example.jp")
    old = store.get("old.box@example.net")
    assert anna is not None and ken is not None and old is not None
    assert anna.status == "unsubscribed"  # the export says she left: she has left here too
    assert ken.status == "unsubscribed"  # the subscribed export does not bring him back
    assert (old.status, old.subscribed_at) == ("bounced", "2019-06-01T08:00:00Z")
    assert not [s for s in store.iter_active() if s.email in ("old.box@example.net",)]
    header = store.header()
    assert header is not None and "tags" in header.cells and "UNSUB_REASON" in header.cells
    # importing the same file again adds no column and changes nothing
    before = (tmp_path / "list.csv").read_bytes()
    report = store.import_entries(read_import(DATA / MAILCHIMP.format("subscribed")).entries)
    assert (len(report.added), len(report.updated)) == (0, 0)
    assert (tmp_path / "list.csv").read_bytes() == before
