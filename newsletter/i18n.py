"""Languages: message catalogues, choosing a reader's language, dates in that language.

Every string a reader sees besides the issue's own text (the email's fixed strings, the
confirmation mail, the web pages, the archive's chrome) is English in the source and
translated through gettext catalogues kept as ``locale/<lang>/LC_MESSAGES/messages.po``
(extracted with Babel: ``pybabel extract -F babel.cfg -o locale/messages.pot .``).
The ``.po`` files are compiled in memory when first needed, so nothing has to be built
before a run or a test and a fresh checkout behaves like an installed one.

Which language: a reader's own ``language`` column, else what the request showed
(Japanese text in a signup mail, the browser's ``Accept-Language``), else the issue's
``language:``, else ``NEWSLETTER_LANGUAGE`` (default ``en``).
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext as gettext_module
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

import jinja2

LANGUAGES: Final = ("en", "ja")
DEFAULT_LANGUAGE: Final = "en"
#: The catalogues shipped with the package (beside ``templates/``).
PACKAGE_LOCALE: Final = Path(__file__).resolve().parent.parent / "locale"
DOMAIN: Final = "messages"

# Kana, CJK ideographs and half-width katakana: text in any of them reads as Japanese
# here (the two languages we have are English and Japanese).
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, where it is shown."""
    return message


def normalize_language(value: str | None) -> str | None:
    """``ja-JP``, ``JA``, ``ja_JP.UTF-8`` -> ``ja``; a language we lack -> None."""
    if not value:
        return None
    primary = re.split(r"[-_.@]", value.strip().lower(), maxsplit=1)[0]
    return primary if primary in LANGUAGES else None


def detect_language(text: str) -> str | None:
    """``ja`` when the text has Japanese in it, else None (no evidence either way)."""
    return "ja" if _JAPANESE.search(text) else None


def negotiate_language(accept_language: str | None) -> str | None:
    """The best of our languages for an ``Accept-Language`` header, or None.

    Weighted per RFC 9110 12.5.4: the highest q wins, ties keep the header's order,
    ``q=0`` means "not this one".
    """
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                continue
        language = normalize_language(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else None


def choose_language(*candidates: str | None) -> str:
    """The first candidate we have a catalogue for, else :data:`DEFAULT_LANGUAGE`."""
    for candidate in candidates:
        language = normalize_language(candidate)
        if language is not None:
            return language
    return DEFAULT_LANGUAGE


def catalogue_path(language: str, locale_dir: Path = PACKAGE_LOCALE) -> Path:
    return locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> gettext_module.NullTranslations:
    """The compiled catalogue of ``language`` (English, the source, needs none)."""
    if language == DEFAULT_LANGUAGE or normalize_language(language) is None:
        return gettext_module.NullTranslations()
    # Babel loads only for a catalogue (about 20 ms an English run does not need)
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)  # a fuzzy guess is not a translation
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def gettext_for(language: str) -> Callable[[str], str]:
    """``_`` for Python code: ``_("Unsubscribe")`` in ``language``."""
    return translations(language).gettext


def make_environment(
    loader: jinja2.BaseLoader,
    language: str,
    *,
    autoescape: Callable[[str | None], bool],
    keep_trailing_newline: bool = False,
) -> jinja2.Environment:
    """A template environment whose ``{% trans %}`` and ``_()`` speak ``language``.

    New-style gettext (``_("Hello %(name)s", name=...)`` escapes its arguments), and
    ``trans`` blocks are trimmed, so a paragraph may wrap in the template source.
    """
    env = jinja2.Environment(
        loader=loader,
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = language
    return env


def format_date(date: dt.date, language: str) -> str:
    """``October 13, 2023`` in English, ``2023年10月13日`` in Japanese."""
    if language == DEFAULT_LANGUAGE:
        return f"{date:%B} {date.day}, {date.year}"
    from babel.dates import format_date as babel_format_date

    return babel_format_date(date, format="long", locale=language)
