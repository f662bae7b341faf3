"""Property-based: whatever the store writes reads back identical; the fast address path
agrees with email-validator."""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.audience.subscribers import (
    FIELDS,
    AddressError,
    ImportEntry,
    SubscriberStore,
    normalize_address,
)

NOW = "2024-06-01T12:00:00Z"
cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=20,
)
local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,10}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)
entries = st.lists(
    st.tuples(
        local,
        st.sampled_from(["example.org", "example.com"]),
        cell_text,
        st.sampled_from(["active", "pending", "unsubscribed"]),
    ),
    max_size=12,
    unique_by=lambda t: (t[0] + "@" + t[1]).lower(),
)
unknown_columns = st.lists(st.from_regex(r"x[a-z]{1,6}", fullmatch=True), max_size=3, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=entries)
def test_any_list_the_store_writes_reads_back_identical(
    rows: list[tuple[str, str, str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "s.csv").write_text("email,status\n")
        store = SubscriberStore(Path(tmp) / "s.csv", clock=lambda: NOW)
        given_entries = [
            ImportEntry(i + 2, f"{lp}@{dom}", name.strip(), status, "test")
            for i, (lp, dom, name, status) in enumerate(rows)
        ]
        report = store.import_entries(given_entries)
        assert len(report.added) == len(rows)
        back = [(s.email, s.name, s.status, s.source) for s in store.iter_valid()]
        assert back == [(e.email, e.name, e.status, "test") for e in given_entries]
        assert store.check() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=entries,
    extra=unknown_columns,
    extra_values=st.lists(cell_text, min_size=40, max_size=40),
    crlf=st.booleans(),
    bom=st.booleans(),
    data=st.data(),
)
def test_unknown_columns_order_and_untouched_rows_survive_a_write(
    rows: list[tuple[str, str, str, str]],
    extra: list[str],
    extra_values: list[str],
    crlf: bool,
    bom: bool,
    data: st.DataObject,
) -> None:
    columns = list(FIELDS[:3]) + extra  # email, name, status, then unknown columns
    columns = data.draw(st.permutations(columns))
    values = iter(extra_values)
    table = [
        {"email": f"{lp}@{dom}", "name": name, "status": status, **{c: next(values) for c in extra}}
        for lp, dom, name, status in rows
    ]
    buf = io.StringIO()
    # Python's writer leaves a lone CR unquoted unless CR is in its line terminator;
    # spreadsheets quote it, so LF files are written with every cell quoted.
    writer = csv.writer(
        buf,
        lineterminator="\r\n" if crlf else "\n",
        quoting=csv.QUOTE_MINIMAL if crlf else csv.QUOTE_ALL,
    )
    writer.writerow(columns)
    for row in table:
        writer.writerow([row[c] for c in columns])
    original = ("\ufeff" if bom else "") + buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.csv"
        path.write_bytes(original.encode("utf-8"))
        store = SubscriberStore(path, clock=lambda: NOW)
        read = list(store.iter_rows())
        assert [r.cells for r in read] == [tuple(row[c] for c in columns) for row in table]
        store.add("new@example.net", name="New")
        if table:
            store.set_status(table[0]["email"], "bounced", note="550")
        after = list(store.iter_rows())
        header = store.header()
        assert header is not None
        assert header.cells[: len(columns)] == columns  # order kept, new columns appended
        for i, (old, new) in enumerate(zip(read, after, strict=False)):
            if i == 0 and table:
                assert new.cells[: len(columns)] == tuple(
                    "bounced" if c == "status" else old.cells[j] for j, c in enumerate(columns)
                )
            else:
                assert new.raw == old.raw
        assert after[-1].subscriber is not None and after[-1].subscriber.email == "new@example.net"
        text = path.read_bytes().decode("utf-8")
        assert text.startswith("\ufeff") == bom


domains = st.sampled_from(
    [
        "example.org",
        "EXAMPLE.com",
        "xn--bcher-kva.example",
        "bücher.example",
        "localhost",
        "example",
        "ex ample.org",
        "例子.广告",
        "a.b-c.example",
        "-bad.example",
        "test",
    ]
)
locals_any = st.text(
    alphabet=st.sampled_from(list("abcXYZ019._+-!#$%&'*/=?^`{|}~\"@ ü用")), min_size=0, max_size=70
)


@settings(max_examples=400, deadline=None)
@given(local_part=locals_any, domain=domains, warm=st.booleans())
def test_fast_address_path_agrees_with_email_validator(
    local_part: str, domain: str, warm: bool
) -> None:
    address = f"{local_part}@{domain}"
    if warm:  # make sure the domain is cached
        with contextlib.suppress(AddressError):
            normalize_address(f"warm@{domain}")
    try:
        expected: str | None = validate_email(
            address.strip(), check_deliverability=False
        ).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = normalize_address(address)
    except AddressError:
        got = None
    assert got == expected


@pytest.mark.parametrize("local_part", ["Postmaster", "ABUSE", "Hostmaster", "webMaster"])
def test_case_insensitive_mailbox_names_at_a_known_domain_agree_with_email_validator(
    local_part: str,
) -> None:
    normalize_address("warm@example.org")  # the domain is known: the fast path is open
    expected = validate_email(f"{local_part}@example.org", check_deliverability=False)
    assert normalize_address(f"{local_part}@example.org") == expected.normalized
