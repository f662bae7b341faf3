"""Attacks on the connection and the body, with raw sockets against a real server:
idle connections, slow heads, huge heads, malformed requests, a full server, slow
bodies, big and deep webhook bodies. The connection attacks run against both HTTP
parsers under the guards (httptools, as served, and h11)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.audience.events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from newsletter.config import Settings
from newsletter.web import Limits, create_app
from newsletter.web.server import PARSERS, ConnectionLimits, raise_file_limit
from tests.support.eventkeys import sign
from tests.support.webserver import running


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def server(
    settings: Settings,
    *,
    limits: Limits | None = None,
    conn: ConnectionLimits | None = None,
    parser: str = "httptools",
) -> Iterator[tuple[str, int]]:
    with running(create_app(settings, limits=limits), limits=conn, parser=parser) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def connect(port: int, source: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True if the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def answer(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    return data


def test_a_thousand_idle_connections_do_not_starve_everyone(
    wsettings: Settings, parser: str
) -> None:
    """Before: uvicorn kept every connection that never sent a request, for ever; 1,100 of
    them from one address held 1,100 of the server's files (past a 1,024 limit: nobody
    else got in)."""
    assert raise_file_limit() >= 2500, "the test needs 2,500 open files (ulimit -n)"
    conn = ConnectionLimits(header_timeout=2.0, per_client=50)
    with server(wsettings, conn=conn, parser=parser) as (_, port), ExitStack() as stack:
        idle = [stack.enter_context(connect(port, "127.0.0.2")) for _ in range(1100)]
        # all but the first 50 are closed at once; the first 50 when the head is late
        # (1 s each: a loaded CI box may take more than 0.2 s to get to one of them)
        dropped = sum(closed_by_server(s, 1.0) for s in idle[50:])
        assert dropped == 1050
        started = time.monotonic()
        other = httpx.HTTPTransport(local_address="127.0.0.3")
        with httpx.Client(transport=other, timeout=5) as client:
            response = client.get(f"http://127.0.0.1:{port}/subscribe")
        assert response.status_code == 200
        assert all(closed_by_server(s, 3.0) for s in idle[:50])
        assert time.monotonic() - started < 6.0


def test_a_request_head_sent_byte_by_byte_is_cut_off(wsettings: Settings, parser: str) -> None:
    """Before: any byte restarted nothing, the connection lived as long as bytes trickled."""
    conn = ConnectionLimits(header_timeout=1.0)
    with (
        server(wsettings, conn=conn, parser=parser) as (_, port),
        connect(port, "127.0.0.2") as sock,
    ):
        head = b"GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40
        started = time.monotonic()
        closed = False
        for byte in head:
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_by_server(sock, 0.1):
                closed = True
                break
        assert closed
        assert 0.9 < time.monotonic() - started < 3.0


def test_keep_alive_still_serves_several_requests(wsettings: Settings, parser: str) -> None:
    conn = ConnectionLimits(header_timeout=1.0)
    with (
        server(wsettings, conn=conn, parser=parser) as (host, port),
        httpx.Client(base_url=f"http://{host}:{port}") as client,
    ):
        for _ in range(3):
            assert client.get("/subscribe").status_code == 200
            time.sleep(0.4)


@pytest.mark.parametrize("path", ["/subscribe", "/webhooks/sendgrid"])
def test_a_stalled_body_gets_408(wsettings: Settings, path: str, parser: str) -> None:
    """Before: a body that stopped arriving held its request (and its buffer) for ever."""
    limits = Limits(body_chunk=0.5, form_body=2.0, provider_body=2.0)
    stamp = str(int(time.time()))
    with (
        server(wsettings, limits=limits, parser=parser) as (_, port),
        connect(port, "127.0.0.2") as sock,
    ):
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n"
            f"{SIGNATURE_HEADER}: MEUCIQ==\r\n{TIMESTAMP_HEADER}: {stamp}\r\n\r\n"
            "email=a".encode()
        )
        started = time.monotonic()
        reply = answer(sock, 5.0)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:80]
        assert b"content-security-policy" in reply.lower()
        assert time.monotonic() - started < 3.0


def test_a_trickled_body_gets_408_at_its_deadline(wsettings: Settings, parser: str) -> None:
    limits = Limits(body_chunk=1.0, form_body=1.5)
    with (
        server(wsettings, limits=limits, parser=parser) as (_, port),
        connect(port, "127.0.0.2") as sock,
    ):
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        )
        started = time.monotonic()
        for _ in range(8):  # a byte every 0.3 s: no single gap is long, the whole is
            time.sleep(0.3)
            try:
                sock.send(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
        assert answer(sock, 3.0).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 4.0


def test_a_malformed_request_gets_400_with_the_security_headers(
    wsettings: Settings, parser: str
) -> None:
    """Before: uvicorn's own 400 carried none of the headers every other answer has."""
    with server(wsettings, parser=parser) as (_, port), connect(port, "127.0.0.2") as sock:
        sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n")  # no colon
        reply = answer(sock, 3.0).lower()
        assert reply.startswith(b"http/1.1 400"), reply[:80]
        assert b"content-security-policy: default-src 'self'" in reply
        assert b"x-content-type-options: nosniff" in reply
        assert b"cache-control: no-store" in reply
        assert closed_by_server(sock, 2.0)


def test_a_request_head_past_its_limit_is_refused(wsettings: Settings, parser: str) -> None:
    """llhttp has no limit of its own on a head's size: the guard counts it (431), as h11
    does through its event size limit (uvicorn answers that 400)."""
    conn = ConnectionLimits(max_head=4096)
    with (
        server(wsettings, conn=conn, parser=parser) as (_, port),
        connect(port, "127.0.0.2") as sock,
    ):
        sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for _ in range(20):  # 20 KB of headers, never finished
                sock.sendall(b"X-Pad: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = answer(sock, 3.0).lower()
        status = b"431" if parser == "httptools" else b"400"
        assert reply.startswith(b"http/1.1 " + status), reply[:80]
        assert b"content-security-policy" in reply
    with server(wsettings, conn=conn, parser=parser) as (host, port):  # a normal head passes
        assert httpx.get(f"http://{host}:{port}/subscribe").status_code == 200


def test_a_full_server_answers_503_with_the_security_headers(
    wsettings: Settings, parser: str
) -> None:
    """Before: uvicorn's own 503 (``limit_concurrency``) carried no security headers."""
    conn = ConnectionLimits(total=5, header_timeout=5.0)
    with server(wsettings, conn=conn, parser=parser) as (_, port), ExitStack() as stack:
        for n in range(5):  # five clients, one idle connection each: the server is full
            stack.enter_context(connect(port, f"127.0.0.{10 + n}"))
        time.sleep(0.2)
        with connect(port, "127.0.0.20") as sock:
            sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            reply = answer(sock, 3.0).lower()
        assert reply.startswith(b"http/1.1 503"), reply[:80]
        assert b"content-security-policy" in reply
        assert b"cache-control: no-store" in reply


# The event webhook's body -------------------------------------------------------------------
@pytest.mark.parametrize(("length", "status"), [(1_000_000, b"403"), (8_000_000, b"413")])
def test_an_unsigned_webhook_body_is_refused_before_it_is_read(
    wsettings: Settings, length: int, status: bytes, parser: str
) -> None:
    """Before: up to 8 MB were read into memory, then the signature was found missing."""
    with server(wsettings, parser=parser) as (_, port), connect(port, "127.0.0.2") as sock:
        sock.sendall(
            b"POST /webhooks/sendgrid HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n[" % length
        )
        reply = answer(sock, 2.0)  # no more body is sent: only an early answer arrives
        assert reply.startswith(b"HTTP/1.1 " + status), reply[:80]


def _signed(private: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign(private, body, stamp),
        TIMESTAMP_HEADER: stamp,
    }


def test_webhook_bodies_are_capped_at_2_mb(
    wsettings: Settings, keys: tuple[ec.EllipticCurvePrivateKey, str]
) -> None:
    event = {"email": "alice@example.org", "event": "delivered", "pad": "x" * 1000}
    body = json.dumps([event] * 2200).encode()  # ~2.3 MB, signed
    with server(wsettings) as (host, port):
        response = httpx.post(
            f"http://{host}:{port}/webhooks/sendgrid", content=body, headers=_signed(keys[0], body)
        )
    assert response.status_code == 413


def test_deeply_nested_webhook_json_is_the_senders_fault(
    wsettings: Settings, keys: tuple[ec.EllipticCurvePrivateKey, str]
) -> None:
    """Before: RecursionError in the parser on the event loop, answered 503 (retried)."""
    body = b"[" * 200_000 + b"]" * 200_000
    with server(wsettings) as (host, port):
        response = httpx.post(
            f"http://{host}:{port}/webhooks/sendgrid",
            content=body,
            headers=_signed(keys[0], body),
            timeout=30,
        )
    assert response.status_code == 400
    assert "nested too deeply" in response.text
