"""Pydantic models of an issue file. No I/O: loading lives in issuefile.py."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from newsletter.compose.markup import MarkupError, Node, iter_links, parse_inline, plain_text
from newsletter.i18n import format_date, gettext_for

_ALLOWED_SCHEMES = ("https://", "http://", "mailto:")
VOLUME_PATTERN = re.compile(r"^\d+\.\d+$")


def check_markdown(value: str) -> str:
    """Parse inline Markdown and refuse links an email cannot use."""
    try:
        nodes = parse_inline(value)
    except MarkupError as exc:
        raise ValueError(f"{exc} at character {exc.offset + 1}") from None
    for link in iter_links(nodes):
        url = link.url
        if not url:
            label = plain_text(link.children)
            raise ValueError(f"empty link target in '[{label}]()': write [text](https://...)")
        if url.startswith("#"):
            continue  # a placeholder: the linter warns, it is not an error
        if any(ch.isspace() for ch in url):
            raise ValueError(f"link target {url!r} contains a space")
        if not url.lower().startswith(_ALLOWED_SCHEMES):
            if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):
                raise ValueError(f"link target {url!r}: only https, http and mailto links work")
            raise ValueError(
                f"relative link {url!r}: email needs absolute links such as https://..."
            )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Markdown = Annotated[str, AfterValidator(_not_blank), AfterValidator(check_markdown)]
PlainLine = Annotated[str, AfterValidator(_not_blank)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Hero(StrictModel):
    """The issue's lead image: a file next to the issue (under assets/) or an https URL."""

    src: PlainLine
    alt: str = ""
    width: int | None = Field(None, gt=0, le=1200)
    height: int | None = Field(None, gt=0, le=2400)
    credit: Markdown | None = None

    @field_validator("src")
    @classmethod
    def _valid_src(cls, value: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*:", value, re.I) and not value.startswith("https://"):
            raise ValueError(f"image src {value!r}: use a file path or an https:// URL")
        return value


class Story(StrictModel):
    """One headline and the detail paragraph that tells it."""

    headline: PlainLine
    detail: Markdown

    def detail_nodes(self) -> tuple[Node, ...]:
        return parse_inline(self.detail)


class Footer(StrictModel):
    about: Markdown
    subscribe: Markdown = 'To receive "{series}" via email, contact {contact}.'


class Issue(StrictModel):
    """A whole issue of the digest, as written in issues/vol-X.Y.yaml."""

    series: PlainLine
    volume: str
    date: dt.date
    # the language of the issue's fixed strings ("Headlines", "Unsubscribe", the date);
    # unset: NEWSLETTER_LANGUAGE
    language: Literal["en", "ja"] | None = None
    subject: PlainLine | None = None
    preheader: PlainLine | None = None
    hero: Hero | None = None
    stories: list[Story] = Field(min_length=1)
    footer: Footer
    # Archived without a send record (an issue that went out before this tool, say).
    # A sent issue is archived anyway; a draft never is.
    published: bool = False

    # Where each field was written (path tuple -> line); set by the loader, used by lint.
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)
    _spans: dict[tuple[str | int, ...], tuple[int, int]] = PrivateAttr(default_factory=dict)
    _text: str = PrivateAttr(default="")
    _source: str = PrivateAttr(default="")

    @field_validator("volume", mode="before")
    @classmethod
    def _volume_text(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("volume")
    @classmethod
    def _volume_shape(cls, value: str) -> str:
        if not VOLUME_PATTERN.match(value):
            raise ValueError(f"volume {value!r} must look like 2.19 (volume.number)")
        return value

    @field_validator("date", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.date()
        return value

    @property
    def slug(self) -> str:
        return f"vol-{self.volume}"

    @property
    def date_text(self) -> str:
        return self.date_in(self.language or "en")

    def date_in(self, language: str) -> str:
        """The issue's date as its readers write it: October 13, 2023 / 2023年10月13日."""
        return format_date(self.date, language)

    @property
    def effective_subject(self) -> str:
        return self.subject_in(self.language or "en")

    def subject_in(self, language: str) -> str:
        """The subject line: as written, or the series, volume and date in ``language``."""
        if self.subject:
            return self.subject
        _ = gettext_for(language)
        template = _("%(series)s, Vol %(volume)s (%(date)s)")
        return template % {
            "series": self.series,
            "volume": self.volume,
            "date": self.date_in(language),
        }

    @property
    def effective_preheader(self) -> str:
        if self.preheader:
            return self.preheader
        return " · ".join(s.headline for s in self.stories[:3])

    def line_of(self, *path: str | int) -> int | None:
        """The line a field was written on, or its nearest written parent's."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get((), None)

    @property
    def source(self) -> str:
        return self._source

    @property
    def text(self) -> str:
        """The file's text as loaded (for locating things inside block scalars)."""
        return self._text

    @property
    def spans(self) -> dict[tuple[str | int, ...], tuple[int, int]]:
        return self._spans
