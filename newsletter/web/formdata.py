"""Posted forms: as text for the pages, as exact *bytes* for SendGrid Inbound Parse.

:func:`read_form` -- the fields a page's form posts (url-encoded, multipart or untyped),
first value of each, as text; parts are capped at :data:`MAX_FORM_BODY`.

:func:`parse_form_bytes` -- multipart/form-data as bytes. Starlette decodes every field
as UTF-8 (or, failing that, Latin-1), which would turn a raw message in Shift_JIS or
ISO-8859-1 8bit into mojibake. The inbound endpoint needs each field's exact bytes:
``raw_from_inbound_parse`` decodes them with the charset SendGrid declares
(``charsets``), and raw mode passes ``email`` on untouched. File parts (parsed-mode
attachments) are skipped: the message is rebuilt without them.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

#: The largest body a page's form may post (the app's default body limit too).
MAX_FORM_BODY: Final = 64 * 1024


async def read_form(request: Request, *, max_part_size: int = MAX_FORM_BODY) -> dict[str, str]:
    """The posted fields (first value of each); url-encoded, multipart or untyped."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_part_size=max_part_size)
        fields: dict[str, str] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, value)
        await form.close()
        return fields
    body = await request.body()
    fields = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(key, value)
    return fields


class FormDataError(ValueError):
    """The body is not multipart/form-data this parser can read."""


def parse_form_bytes(body: bytes, content_type: str, *, max_fields: int = 1000) -> dict[str, bytes]:
    """``{field name: exact bytes}`` (first value of each field; files skipped)."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise FormDataError(f"expected multipart/form-data, got {content_type or 'nothing'!r}")
    boundary = params.get(b"boundary")
    if not boundary:
        raise FormDataError("multipart/form-data without a boundary")

    fields: dict[str, bytes] = {}
    header_name = bytearray()
    header_value = bytearray()
    disposition = b""
    data = bytearray()
    count = 0

    def on_part_begin() -> None:
        nonlocal disposition
        disposition = b""
        data.clear()

    def on_header_field(chunk: bytes, start: int, end: int) -> None:
        header_name.extend(chunk[start:end])

    def on_header_value(chunk: bytes, start: int, end: int) -> None:
        header_value.extend(chunk[start:end])

    def on_header_end() -> None:
        nonlocal disposition
        if bytes(header_name).lower() == b"content-disposition":
            disposition = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        data.extend(chunk[start:end])

    def on_part_end() -> None:
        nonlocal count
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        if name is None:
            raise FormDataError("a form part has no name")
        count += 1
        if count > max_fields:
            raise FormDataError(f"more than {max_fields} form fields")
        if b"filename" not in options:
            fields.setdefault(name.decode("utf-8", "replace"), bytes(data))
        data.clear()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except FormDataError:
        raise
    except Exception as exc:  # python-multipart's own errors, whatever their class
        raise FormDataError(f"malformed multipart/form-data: {exc}") from exc
    return fields
