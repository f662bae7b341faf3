"""Languages: every reader-visible string is in the catalogues; choosing a language; a
Japanese request through `signups process` is answered in Japanese and recorded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from typer.testing import CliRunner

from newsletter.audience.confirm_mail import render_confirmation
from newsletter.audience.subscribers import SubscriberStore
from newsletter.cli.app import app
from newsletter.config import Settings
from newsletter.i18n import (
    LANGUAGES,
    catalogue_path,
    choose_language,
    detect_language,
    negotiate_language,
    translations,
)
from newsletter.tokens import CONFIRM_TTL, make_token
from tests.support.signupkit import SECRET, load, outbox

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_METHODS = [("templates/**.j2", "jinja2")]
PYTHON_METHODS = [("newsletter/**.py", "python")]


def _extract(method_map: list[tuple[str, str]], options: dict[str, dict[str, str]]) -> set[str]:
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options, keywords={**DEFAULT_KEYWORDS, "N_": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def reader_strings() -> set[str]:
    """Every string marked for translation in the templates and the package's code."""
    templates = _extract(TEMPLATE_METHODS, {"templates/**.j2": {"trimmed": "true"}})
    code = _extract(PYTHON_METHODS, {})
    return templates | code


def test_extraction_finds_the_fixed_strings() -> None:
    strings = reader_strings()
    for expected in ("View in browser", "Unsubscribe", "Headlines", "Details", "Subscribe"):
        assert expected in strings
    assert len(strings) > 90


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_reader_string_is_translated(language: str) -> None:
    with catalogue_path(language).open("rb") as po:
        catalogue = read_po(po, locale=language)
    translated = {str(m.id) for m in catalogue if m.id and m.string and not m.fuzzy}
    missing = sorted(reader_strings() - translated)
    assert not missing, (
        f"{len(missing)} strings missing from {catalogue_path(language)}: {missing[:5]}; "
        "run pybabel extract/update (babel.cfg) and translate them"
    )


def test_placeholders_survive_translation() -> None:
    import re

    with catalogue_path("ja").open("rb") as po:
        catalogue = read_po(po, locale="ja")
    for message in catalogue:
        if not message.id:
            continue
        names = sorted(re.findall(r"%\((\w+)\)s", str(message.id)))
        assert sorted(re.findall(r"%\((\w+)\)s", str(message.string))) == names, message.id


def test_catalogue_compiles_and_translates() -> None:
    assert translations("ja").gettext("Unsubscribe") == "配信停止"
    assert translations("en").gettext("Unsubscribe") == "Unsubscribe"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ja,en-US;q=0.9,en;q=0.8", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,ja;q=0.5", "ja"),
        ("ja;q=0, en;q=0.1", "en"),
        ("ja-JP", "ja"),
        ("de", None),
        ("", None),
        (None, None),
    ],
)
def test_accept_language(header: str | None, expected: str | None) -> None:
    assert negotiate_language(header) == expected


def test_language_choice_and_detection() -> None:
    assert choose_language(None, "xx", "ja", "en") == "ja"
    assert choose_language() == "en"
    assert detect_language("購読を希望します") == "ja"
    assert detect_language("Please add me") is None


def test_confirmation_in_japanese(settings: Settings) -> None:
    token = make_token(SECRET, "confirm", "taro@example.jp", ttl=CONFIRM_TTL)
    rendered = render_confirmation("taro@example.jp", token, settings, "ja")
    # a plain subject, no token; the body's reference is the short one
    assert rendered.subject == "US-Japan Alliance Digestの購読登録の確認"
    assert re.search(r"参照番号：\s*NL-[0-9A-Z]{5,8}-[A-Z2-7]{12}", rendered.text)
    assert '<html lang="ja"' in rendered.html and "登録を確定する" in rendered.html
    assert "参照番号：" in rendered.text and "Reference" not in rendered.text


runner = CliRunner()


@pytest.fixture
def cli_home(home: Path) -> Iterator[Path]:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    (home / ".env").write_text(
        "NEWSLETTER_FROM=US-Japan Alliance Digest <digest@example.org>\n"
        "NEWSLETTER_CONTACT=digest@example.org\n"
        "NEWSLETTER_PUBLIC_URL=https://digest.example.org\n"
        f"NEWSLETTER_SECRET_KEY={SECRET}\n"
    )
    yield home


def test_japanese_request_gets_japanese_confirmation_and_language_ja(
    cli_home: Path, settings: Settings
) -> None:
    folder = cli_home / "mail"
    folder.mkdir()
    for name in ("14-japanese-iso2022jp-subscribe.eml", "01-plain-please-add-me.eml"):
        (folder / name).write_bytes(load(name))

    result = runner.invoke(app, ["signups", "process", "--source", str(folder)])
    assert result.exit_code == 0, result.output

    rows = {s.key: s for s in SubscriberStore.from_settings(settings).iter_valid()}
    assert rows["taro.yamada@example.com"].language == "ja"
    assert rows["taro.yamada@example.com"].status == "pending"
    assert rows["alice@example.com"].language == ""  # English: nothing to record

    mails = {str(m["To"]).split("<")[-1].rstrip(">"): m for m in outbox(settings)}
    japanese = mails["taro.yamada@example.com"]
    text = japanese.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "購読登録の確認をお願いします" in text and "参照番号：" in text
    assert "購読登録の確認" in str(japanese["Subject"])
    english = mails["alice@example.com"]
    assert "Please confirm your subscription" in english.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert (
        (cli_home / "subscribers" / "subscribers.csv")
        .read_text(encoding="utf-8")
        .splitlines()[0]
        .endswith(",language")
    )


def test_approved_japanese_request_is_answered_in_japanese(settings: Settings) -> None:
    from newsletter.audience.review import approve
    from newsletter.audience.signups import process_raw_message

    (Path("subscribers") / "subscribers.csv").unlink(missing_ok=True)
    outcome = process_raw_message(load("43-japanese-thanks-reader.eml"), settings, source="t")
    assert outcome.review and outcome.record_id is not None
    approve(outcome.record_id, settings, as_kind="subscribe")
    row = SubscriberStore.from_settings(settings).get("aoi@example.net")
    assert row is not None and row.language == "ja" and row.status == "pending"
    (mail,) = outbox(settings)
    assert "購読登録の確認" in str(mail["Subject"])
