"""The pages' language: Accept-Language when the reader is unknown, the reader's own
language once listed, NEWSLETTER_LANGUAGE otherwise; the signup form records it."""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from tests.support.webserver import (
    Serve,
    outbox_messages,
    post_signup,
    subscribe_form,
    unsubscribe_path,
    wait_for_confirmation,
)

JA = {"Accept-Language": "ja,en-US;q=0.8"}


def test_pages_follow_accept_language(serve: Serve) -> None:
    client = serve()
    japanese = client.get("/subscribe", headers=JA)
    assert '<html lang="ja">' in japanese.text and "<h1>購読登録</h1>" in japanese.text
    assert japanese.headers["content-language"] == "ja"
    assert "accept-language" in japanese.headers["vary"].lower()
    english = client.get("/subscribe", headers={"Accept-Language": "en-GB,ja;q=0.5"})
    assert '<html lang="en">' in english.text and "<h1>Subscribe</h1>" in english.text
    plain = client.get("/subscribe")
    assert '<html lang="en">' in plain.text
    missing = client.get("/nowhere", headers=JA)
    assert missing.status_code == 404 and "ページが見つかりません" in missing.text


def test_japanese_signup_is_recorded_and_confirmed_in_japanese(
    serve: Serve, store: SubscriberStore, home: Path
) -> None:
    client = serve()
    client.headers.update(JA)
    csrf = subscribe_form(client)
    bad = post_signup(client, csrf, "not-an-address")
    assert bad.status_code == 400 and "完全なメールアドレスを入力してください" in bad.text
    done = post_signup(client, csrf, "hanako@example.jp", name="山田 花子")
    assert "受信箱をご確認ください" in done.text
    wait_for_confirmation(home, "hanako@example.jp")
    (body,) = [text for to, text in outbox_messages(home) if "hanako@example.jp" in to]
    assert "購読登録の確認をお願いします" in body
    sub = store.get("hanako@example.jp")
    assert sub is not None and sub.language == "ja"


def test_english_signup_records_no_language(
    serve: Serve, store: SubscriberStore, home: Path
) -> None:
    client = serve()
    csrf = subscribe_form(client)
    post_signup(client, csrf, "ann@example.net")
    wait_for_confirmation(home, "ann@example.net")
    sub = store.get("ann@example.net")
    assert sub is not None and sub.language == ""
    header = (home / "subscribers" / "subscribers.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "language" not in header  # the column appears only once a language is known


def test_reader_language_wins_over_the_browser(
    serve: Serve, store: SubscriberStore, wsettings: Settings, home: Path
) -> None:
    store.add("taro@example.jp", status="active", source="seed")
    client = serve()
    # listed without a language: the browser decides
    page = client.get(unsubscribe_path(wsettings, "taro@example.jp"), headers=JA)
    assert '<html lang="ja">' in page.text and "配信を停止しますか" in page.text
    english = client.get(unsubscribe_path(wsettings, "taro@example.jp"))
    assert '<html lang="en">' in english.text
    # listed as Japanese: Japanese whatever the browser says
    csv = home / "subscribers" / "subscribers.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    lines[0] += ",language"
    lines = [lines[0]] + [line + (",ja" if "taro@" in line else ",") for line in lines[1:]]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again = client.get(unsubscribe_path(wsettings, "taro@example.jp"))
    assert '<html lang="ja">' in again.text and "配信を停止しますか" in again.text
