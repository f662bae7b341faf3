from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import load_settings
from newsletter.errors import ConfigError, TokenError
from newsletter.tokens import make_token, read_token


def test_defaults_work_on_a_fresh_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.transport == "outbox"
    assert s.from_address == "newsletter@example.org" and s.contact_address == s.from_address
    assert s.public_url is None


def test_env_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "NEWSLETTER_FROM=Digest <digest@example.org>\nNEWSLETTER_CONTACT=join@example.org\n"
    )
    monkeypatch.setenv("NEWSLETTER_CONTACT", "env@example.org")
    s = load_settings()
    assert (s.from_name, s.from_address) == ("Digest", "digest@example.org")
    assert s.contact_address == "env@example.org"
    assert load_settings(contact="cli@example.org").contact_address == "cli@example.org"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NEWSLETTER_FROM", "not an address", "NEWSLETTER_FROM: not a valid mailbox"),
        ("NEWSLETTER_CONTACT", "a@@example.org", "NEWSLETTER_CONTACT: not a valid email address"),
        (
            "NEWSLETTER_PUBLIC_URL",
            "digest.example.org",
            "NEWSLETTER_PUBLIC_URL: not an http(s) URL",
        ),
        (
            "NEWSLETTER_TRANSPORT",
            "pigeon",
            "NEWSLETTER_TRANSPORT: Input should be 'outbox', 'smtp' or 'sendgrid'",
        ),
        ("SMTP_PORT", "twenty-five", "SMTP_PORT: Input should be a valid integer"),
    ],
)
def test_invalid_setting_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.message.startswith("invalid setting: " + message)


def test_secret_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "super-secret-value-123-Xq9vLm2Rt8")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-password")
    s = load_settings()
    assert "super-secret" not in repr(s) and "hunter2" not in repr(s)
    assert s.require_secret() == "super-secret-value-123-Xq9vLm2Rt8"


def test_tokens_round_trip_and_refuse_tampering() -> None:
    token = make_token("k" * 20, "unsubscribe", "A@Example.org", ttl=60, now=1000)
    assert read_token("k" * 20, token, "unsubscribe", now=1050) == "a@example.org"
    with pytest.raises(TokenError, match="expired"):
        read_token("k" * 20, token, "unsubscribe", now=1061)
    with pytest.raises(TokenError, match="signature"):
        read_token("k" * 20, token, "confirm", now=1000)
    with pytest.raises(TokenError, match="signature"):
        read_token("other-key-000000000", token, "unsubscribe", now=1000)
    body, sig = token.split(".")
    with pytest.raises(TokenError):
        read_token("k" * 20, body[:-2] + "xx." + sig, "unsubscribe", now=1000)
    with pytest.raises(TokenError, match="malformed"):
        read_token("k" * 20, "garbage", "unsubscribe")


def test_tokens_accept_only_the_canonical_spelling() -> None:
    token = make_token("k" * 20, "confirm", "a@example.org", ttl=60, now=1000)
    body, sig = token.split(".")
    for bad in (f"{body}=.{sig}", f"{body}.{sig}=", f"{body}!.{sig}", f"{body}.{sig}x"):
        with pytest.raises(TokenError):
            read_token("k" * 20, bad, "confirm", now=1000)


def test_signed_message_ids() -> None:
    from newsletter.tokens import make_message_id, verify_message_id

    mid = make_message_id("k" * 20, "Alice@Example.org", "example.org")
    assert mid.startswith("<") and mid.endswith("@example.org>")
    assert verify_message_id("k" * 20, mid, "alice@example.org")
    assert verify_message_id("k" * 20, mid.strip("<>"), "ALICE@example.org")
    assert not verify_message_id("k" * 20, mid, "bob@example.org")
    assert not verify_message_id("other-secret-0000000", mid, "alice@example.org")
    assert not verify_message_id("k" * 20, "<123.456@example.org>", "alice@example.org")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("short-key-0123456789", "is too short (20 bytes)"),
        ("$(python -c 'import secrets; print(secrets.token_urlsafe(32))')", "shell command"),
        ("a" * 40, "only 1 different characters"),
        ("correct-horse!" * 3, "14-character pattern repeated"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "a run like 'abcd'"),
    ],
)
def test_weak_secret_keys_are_refused_with_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, reason: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", value)
    with pytest.raises(ConfigError) as info:
        load_settings().require_secret()
    assert info.value.message.startswith("NEWSLETTER_SECRET_KEY ")
    assert reason in info.value.message
    assert info.value.hint is not None
    assert "secrets.token_urlsafe(32)" in info.value.hint
    assert "not run by a shell" in info.value.hint
    assert value not in info.value.message  # the key itself is never printed


def test_generated_secret_keys_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets

    monkeypatch.chdir(tmp_path)
    for value in [secrets.token_urlsafe(32) for _ in range(50)] + [secrets.token_hex(32)]:
        monkeypatch.setenv("NEWSLETTER_SECRET_KEY", value)
        assert load_settings().require_secret() == value


def test_env_example_never_suggests_a_shell_command_for_a_value() -> None:
    from tests.conftest import ROOT

    for number, line in enumerate((ROOT / ".env.example").read_text().splitlines(), 1):
        assert "$(" not in line, f".env.example:{number}: {line}"
