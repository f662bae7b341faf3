"""The request corpus (tests/data/requests, >= 150 realistic messages, expectations
written before running): precision and recall per outcome, and the two outcomes that
must never happen.

* a confirmation to someone who did not ask (or whom the sender did not name): a
  ``subscribe`` naming any address not expected;
* unsubscribing a reader who did not ask to leave: an ``unsubscribe`` whose addresses
  include the sender when the sender did not ask (the act stage applies only the
  sender's own; others go to review).

Run with ``-s`` to see the figures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from newsletter.audience.inbound import classify_message, parse_message

DATA = Path(__file__).resolve().parents[2] / "data" / "requests"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "expected.yaml").read_text("utf-8"))
OUTCOMES = ("subscribe", "unsubscribe", "review", "auto")


def _outcome(kind: str, addresses: list[str], want: dict[str, Any]) -> str:
    """The outcome label: a kind, with its exact addresses for the two request kinds."""
    if kind in ("subscribe", "unsubscribe"):
        expected = {a.lower() for a in want["addresses"]}
        if want["kind"] == kind and {a.lower() for a in addresses} != expected:
            return f"{kind} (other addresses)"
    return kind


def test_request_corpus_precision_recall_and_the_two_must_nevers() -> None:
    files = sorted(p.name for p in DATA.glob("*.eml"))
    assert files == sorted(EXPECTED) and len(files) >= 150
    tuned = [f for f in files if "-ho-" not in f]
    held_out = [f for f in files if "-ho-" in f]
    bad_tuned = _report("the messages the classifier was tuned on", tuned)
    bad_held = _report("written after the first tuning (-ho-)", held_out)
    assert bad_tuned == ([], [])
    assert bad_held == ([], [])


def _report(title: str, files: list[str]) -> tuple[list[str], list[str]]:
    """Print the figures for ``files``; return the two must-nevers' files."""
    truth: Counter[str] = Counter()
    said: Counter[str] = Counter()
    right: Counter[str] = Counter()
    unasked_confirmations: list[str] = []
    unasked_unsubscribes: list[str] = []
    wrong: list[str] = []
    for name in files:
        want = EXPECTED[name]
        got = classify_message(
            parse_message((DATA / name).read_bytes()),
            contact="digest@example.org",
            secret="request-corpus-secret-0123",
            our_domains=["example.org"],
        )
        addresses = list(got.addresses)
        label = _outcome(got.kind, addresses, want)
        truth[want["kind"]] += 1
        said[label] += 1
        if label == want["kind"]:
            right[label] += 1
        else:
            wrong.append(
                f"{name}: expected {want['kind']} {want['addresses']}, got "
                f"{got.kind} {addresses} ({got.reason})"
            )
        allowed = {a.lower() for a in want["addresses"]} if want["kind"] == "subscribe" else set()
        if got.kind == "subscribe" and any(a.lower() not in allowed for a in addresses):
            unasked_confirmations.append(name)
        sender = want["sender"].lower()
        asked = want["kind"] == "unsubscribe" and sender in {a.lower() for a in want["addresses"]}
        if got.kind == "unsubscribe" and sender in {a.lower() for a in addresses} and not asked:
            unasked_unsubscribes.append(name)

    print(f"\nrequest corpus, {title}: {len(files)} messages, {sum(right.values())} as expected")
    for outcome in OUTCOMES:
        precision = right[outcome] / said[outcome] if said[outcome] else 1.0
        recall = right[outcome] / truth[outcome] if truth[outcome] else 1.0
        print(
            f"  {outcome:12} expected {truth[outcome]:3}  said {said[outcome]:3}  "
            f"precision {precision:6.1%}  recall {recall:6.1%}"
        )
    print(f"  confirmation to someone who did not ask: {len(unasked_confirmations)}")
    print(f"  unsubscribed a reader who did not ask:   {len(unasked_unsubscribes)}")
    for line in wrong:
        print("  " + line)
    return unasked_confirmations, unasked_unsubscribes
