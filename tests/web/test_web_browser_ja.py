"""The Japanese signup -> confirm -> unsubscribe flow in headless Chromium at 375 px.

The browser asks for Japanese (Accept-Language ja-JP); once the reader is listed with
``language=ja`` their pages stay Japanese even in an English browser. Japanese glyphs
come from Debian's fonts-noto-cjk (scripts/system-packages.sh).
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from newsletter.web import create_app
from tests.support.eventkeys import keypair
from tests.support.webserver import running, unsubscribe_path, wait_for_confirmation, web_settings

pytestmark = pytest.mark.browser

NOTO = Path("/usr/share/fonts/opentype/noto")
EMAIL = "hanako.yamada.long.address.for.wrapping@a-long-subdomain.example.jp"


@pytest.fixture
def wsettings(home: Path) -> Settings:
    return web_settings(keypair()[1])


@pytest.fixture
def base_url(wsettings: Settings) -> Iterator[str]:
    with running(create_app(wsettings)) as url:
        yield url


def _page(browser: Any, locale: str) -> Any:
    context = browser.new_context(viewport={"width": 375, "height": 800}, locale=locale)
    return context.new_page()


def _check(page: Any, base_url: str) -> None:
    """lang="ja", no sideways scrolling at 375 px, and the text really is Japanese."""
    assert page.evaluate("document.documentElement.lang") == "ja"
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"horizontal overflow: {scroll} > {inner}"
    assert page.url.startswith(base_url)


def test_japanese_fonts_are_installed() -> None:
    fonts = sorted(NOTO.glob("NotoSansCJK-*.ttc"))
    assert fonts, (
        f"no Noto CJK fonts in {NOTO}: install fonts-noto-cjk (scripts/system-packages.sh)"
    )


def test_japanese_signup_confirm_unsubscribe(
    browser: Any, base_url: str, home: Path, wsettings: Settings
) -> None:
    page = _page(browser, "ja-JP")
    page.goto(base_url + "/subscribe")
    page.get_by_role("heading", name="購読登録").wait_for()
    _check(page, base_url)
    page.get_by_label("メールアドレス").fill(EMAIL)
    page.get_by_label("お名前").fill("山田 花子")
    page.get_by_role("button", name="購読登録").click()
    page.get_by_role("heading", name="受信箱をご確認ください").wait_for()
    _check(page, base_url)

    # the confirmation mail is Japanese, and the row records the reader's language
    link = wait_for_confirmation(home, EMAIL)
    mail = next(p for p in sorted((home / "outbox").rglob("*.eml")))
    msg = BytesParser(policy=policy.default).parsebytes(mail.read_bytes())
    assert "購読登録の確認" in str(msg["Subject"])
    store = SubscriberStore.from_settings(wsettings)
    pending = store.get(EMAIL)
    assert pending is not None and pending.language == "ja" and pending.status == "pending"

    page.goto(base_url + link)
    page.get_by_role("heading", name="登録の確認").wait_for()
    _check(page, base_url)
    page.get_by_role("button", name="登録を確定する").click()
    page.get_by_role("heading", name="登録が完了しました").wait_for()
    _check(page, base_url)
    active = store.get(EMAIL)
    assert active is not None and active.status == "active"

    # an English browser: the reader's own language still wins
    english = _page(browser, "en-US")
    english.goto(base_url + unsubscribe_path(wsettings, EMAIL))
    english.get_by_role("heading", name="配信停止").wait_for()
    _check(english, base_url)
    english.get_by_role("button", name="配信停止").click()
    english.get_by_role("heading", name="配信を停止しました").wait_for()
    _check(english, base_url)
    gone = store.get(EMAIL)
    assert gone is not None and gone.status == "unsubscribed"

    # pages without a reader follow the browser
    english.goto(base_url + "/subscribe")
    assert english.evaluate("document.documentElement.lang") == "en"
    page.goto(base_url + "/nowhere")
    page.get_by_role("heading", name="ページが見つかりません").wait_for()
    _check(page, base_url)
