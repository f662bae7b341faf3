"""What the pipelined SMTP engine (:mod:`.smtp_pipeline`) puts on the wire and reads
back: a message's bytes as they go after DATA (dot-stuffed, its static parts prepared
once per send), the replies parsed from a byte buffer, and the state of one recipient
(:class:`Job`) and of one connection (:class:`Link`)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from newsletter.delivery.transports.base import Outcome, RecipientLike

#: chunks at least this long are the issue's static parts: stuffed once, kept
STATIC_CHUNK = 1024
_CACHE_LIMIT = 64


class Feed(Protocol):
    """What the engine needs of the send loop (:class:`newsletter.delivery.stream.Feed`):
    recipients, and commits that run in a journal thread while the engine goes on (one at
    a time; :attr:`wakeup` turns readable when one is done)."""

    @property
    def stopping(self) -> bool: ...
    @property
    def busy(self) -> bool: ...
    @property
    def wakeup(self) -> socket.socket: ...
    def take(self, n: int) -> list[tuple[str, RecipientLike]]: ...
    def still_subscribed(self, key: str) -> bool: ...
    def submit(
        self, outcomes: Sequence[Outcome], in_flight: Sequence[str], released: Sequence[Outcome]
    ) -> None: ...
    def completed(self) -> list[str]: ...
    def settle(self) -> list[str] | None: ...
    def commit(
        self, outcomes: Sequence[Outcome], in_flight: Sequence[str], released: Sequence[Outcome]
    ) -> None: ...


@dataclass(slots=True, eq=False)
class Job:
    """One recipient on its way: its message as it goes after DATA, and its envelope."""

    key: str
    email: str
    payload: list[bytes]  # dot-stuffed, CRLF-ended chunks; the ending dot goes apart
    envelope: bytes  # MAIL FROM, RCPT TO and DATA in one write
    attempt: int = 1
    reason: str = ""
    refusal: tuple[str, int, bytes] | None = None  # the first refused command


@dataclass(slots=True, eq=False)
class Link:
    """One connection and what is outstanding on it, in order."""

    smtp: smtplib.SMTP | None
    tls: bool = False
    inbuf: bytearray = field(default_factory=bytearray)
    wbuf: list[bytes | memoryview] = field(default_factory=list)
    expect: deque[tuple[str, Job | None]] = field(default_factory=deque)
    envelope: Job | None = None  # MAIL/RCPT/DATA sent, body not yet
    body: Job | None = None  # body sent, its reply awaited
    ready: bool = False  # 354 came for ``envelope``: its body waits for the commit
    needs_rset: bool = False
    deadline: float = 0.0
    closing: bool = False  # the server said 421
    revive_at: float = 0.0

    def attach(self, smtp: smtplib.SMTP) -> socket.socket:
        """Take over ``smtp``'s (open, logged in) socket, non-blocking from now on."""
        sock = smtp.sock
        assert sock is not None
        sock.setblocking(False)
        self.smtp, self.tls = smtp, isinstance(sock, ssl.SSLSocket)
        self.inbuf.clear()
        self.wbuf.clear()
        self.expect.clear()
        self.needs_rset = self.closing = self.ready = False
        return sock

    def write_some(self, sock: socket.socket) -> None:
        """Write what the socket takes now of :attr:`wbuf` (raises OSError if it broke)."""
        try:
            if self.tls:  # an SSL socket has no sendmsg
                data = b"".join(self.wbuf)
                sent = sock.send(data)
                self.wbuf = [memoryview(data)[sent:]] if sent < len(data) else []
                return
            sent = sock.sendmsg(self.wbuf)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        while sent and self.wbuf:
            size = len(self.wbuf[0])
            if sent >= size:
                sent -= size
                self.wbuf.pop(0)
            else:
                self.wbuf[0] = memoryview(self.wbuf[0])[sent:]
                sent = 0

    def read_some(self, sock: socket.socket) -> bool:
        """Read what has come into :attr:`inbuf`; False when the server closed the
        connection (raises OSError if it broke)."""
        try:
            while True:
                chunk = sock.recv(262144)
                if not chunk:
                    return False
                self.inbuf += chunk
                if not (self.tls and sock.pending()):  # type: ignore[attr-defined]
                    return True
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True


def stuffed(message: bytes) -> bytes:
    """The message as it goes after DATA, CRLF-ended, leading dots doubled (no final dot)."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if b"\r\n." in message:
        message = message.replace(b"\r\n.", b"\r\n..")
    if message.startswith(b"."):
        message = b"." + message
    return message


def parse_replies(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete replies at the front of ``buf`` (consumed); a partial one stays."""
    end = buf.rfind(b"\n")
    if end < 0:
        return []
    out: list[tuple[int, bytes]] = []
    texts: list[bytes] = []
    consumed = pos = 0
    for line in bytes(buf[: end + 1]).split(b"\n")[:-1]:
        pos += len(line) + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[3:4] == b"-":  # more lines of this reply follow
            texts.append(line[4:].strip())
            continue
        code = int(line[:3]) if line[:3].isdigit() else -1
        if texts:
            texts.append(line[4:].strip())
            out.append((code, b"\n".join(texts)))
            texts = []
        else:
            out.append((code, line[4:].strip()))
        consumed = pos
    if consumed:
        del buf[:consumed]
    return out


class Stuffer:
    """Dot-stuffs a message given as chunks (:meth:`MessageBuilder.to_chunks`), each
    static chunk once per send: per message only the few personal chunks are scanned.

    The result is what :func:`stuffed` gives for the joined chunks, as chunks.
    """

    def __init__(self) -> None:
        #: chunk -> (stuffed, starts with a dot, its last two bytes)
        self._cache: dict[bytes, tuple[bytes, bool, bytes]] = {}

    def __call__(self, chunks: Sequence[bytes]) -> list[bytes]:
        cache = self._cache
        out: list[bytes] = []
        tail = b"\r\n"  # the message starts a line, as does the text after each CRLF
        for chunk in chunks:
            entry = cache.get(chunk)
            if entry is None:
                if not chunk:
                    continue
                done = chunk.replace(b"\r\n.", b"\r\n..") if b"\r\n." in chunk else chunk
                entry = (done, chunk[:1] == b".", chunk[-2:])
                if len(chunk) >= STATIC_CHUNK and len(cache) < _CACHE_LIMIT:
                    cache[chunk] = entry
            if tail != b"\r\n":
                if tail.endswith(b"\r"):  # a CRLF split across two chunks: the slow way
                    return [stuffed(b"".join(chunks))]
            elif entry[1]:
                out.append(b".")
            out.append(entry[0])
            tail = entry[2]
        if tail != b"\r\n":
            out.append(b"\r\n")
        return out
