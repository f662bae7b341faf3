"""Inbound mail in local files: a folder of ``.eml`` files, a Maildir, an mbox file.

None of these sources deletes or rewrites mail: a folder and an mbox are only read (the
records make re-runs safe), a handled Maildir message is renamed into ``cur/`` with
the ``S`` flag. :func:`open_path_source` picks the source a path is.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from pathlib import Path

from newsletter.audience.inbound.sources import InboundItem, InboundSource
from newsletter.errors import NewsletterError

__all__ = ["FolderSource", "MaildirSource", "MboxSource", "open_path_source"]

#: the Maildir flag that marks a handled message (RFC-less but universal: "seen")
DONE_FLAG = "S"


class FolderSource(InboundSource):
    """A folder of ``.eml`` files (read in name order, left untouched)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"folder:{self.path}"

    def open(self) -> None:
        if not self.path.is_dir():
            raise NewsletterError(f"{self.path}: not a folder")

    def items(self) -> Iterator[InboundItem]:
        for file in sorted(self.path.glob("*.eml")):
            try:
                raw = file.read_bytes()
            except OSError as exc:
                raise NewsletterError(f"{file}: cannot read: {exc.strerror}") from exc
            yield InboundItem(file.name, raw)


class MaildirSource(InboundSource):
    """A Maildir (``new/``, ``cur/``, ``tmp/``).

    Every message in ``new/`` and ``cur/`` is offered (a message someone already read in
    a mail client still needs handling; the records skip those handled before). A
    handled message is renamed into ``cur/`` with the ``S`` flag added to its info;
    its bytes are never rewritten.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"maildir:{self.path}"
        self._files: dict[str, Path] = {}
        self._colon = ":"

    def open(self) -> None:
        try:
            box = mailbox.Maildir(str(self.path), factory=None, create=False)
        except mailbox.NoSuchMailboxError:
            raise NewsletterError(f"{self.path}: not a Maildir (no new/ and cur/)") from None
        self._colon = box.colon or ":"
        if not (self.path / "new").is_dir() or not (self.path / "cur").is_dir():
            raise NewsletterError(f"{self.path}: not a Maildir (no new/ and cur/)")

    def _key(self, name: str) -> str:
        return name.split(self._colon, 1)[0]

    def items(self) -> Iterator[InboundItem]:
        files: list[tuple[str, Path]] = []
        for sub in ("new", "cur"):
            for entry in (self.path / sub).iterdir():
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                files.append((self._key(entry.name), entry))
        files.sort(key=lambda pair: pair[0])
        self._files = dict(files)
        for key, file in files:
            try:
                raw = file.read_bytes()
            except FileNotFoundError:  # moved by a mail client meanwhile
                continue
            yield InboundItem(key, raw)

    def mark_done(self, item: InboundItem, outcome: str) -> None:
        current = self._files.get(item.source_id)
        if current is None:
            return
        info = current.name.split(self._colon, 1)[1] if self._colon in current.name else ""
        flags = info[2:] if info.startswith("2,") else ""
        if current.parent.name == "cur" and DONE_FLAG in flags:
            return
        new_flags = "".join(sorted(set(flags) | {DONE_FLAG}))
        target = self.path / "cur" / f"{item.source_id}{self._colon}2,{new_flags}"
        try:
            os.rename(current, target)
        except OSError as exc:
            raise NewsletterError(f"{current}: cannot move to cur/: {exc.strerror}") from exc
        self._files[item.source_id] = target


class MboxSource(InboundSource):
    """An mbox file, read only: the records alone make re-runs safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"mbox:{self.path}"

    def open(self) -> None:
        if not self.path.is_file():
            raise NewsletterError(f"{self.path}: no such mbox file")

    def items(self) -> Iterator[InboundItem]:
        box = mailbox.mbox(str(self.path), factory=None, create=False)
        try:
            for n, key in enumerate(box.iterkeys(), start=1):
                yield InboundItem(f"#{n}", box.get_bytes(key))
        finally:
            box.close()


def open_path_source(path: Path) -> InboundSource:
    """A folder of .eml files, a Maildir or an mbox file, whichever ``path`` is."""
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return MaildirSource(path)
        return FolderSource(path)
    if path.is_file():
        with path.open("rb") as fh:
            start = fh.read(5)
        if start == b"From " or start == b"":
            return MboxSource(path)
        raise NewsletterError(
            f"{path}: not an mbox file (it does not start with 'From ')",
            hint="pass a folder of .eml files, a Maildir or an mbox file",
        )
    raise NewsletterError(f"{path}: no such file or folder")
