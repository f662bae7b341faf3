"""A local stand-in for SendGrid's v3 ``POST /v3/mail/send``, enforcing its contract.

Checks what SendGrid checks before it accepts a request: Bearer auth, a JSON body,
``personalizations`` (1 to 1,000, each with ``to``), at most 1,000 recipients in all,
``from.email``, a subject (top level or in every personalization), ``content`` (text/plain
first) or ``template_id``, and a body under 30 MB. Errors look like SendGrid's::

    {"errors": [{"message": "...", "field": "...", "help": null}]}

Accepts with 202, an empty body and ``X-Message-Id``. ``script`` programs the next
requests: ``server.script += ["429", "500", "401", "hang", "400"]`` (one per request).
Every accepted personalization is recorded so tests can count copies per recipient.
``latency`` makes every answer take that long (an API across the internet);
``max_concurrent`` is the most requests it was answering at once.

``check_later`` (benchmarks): a request that passes auth is answered 202 at once and
its body is parsed and checked afterwards, by :meth:`check_deferred`, outside the timed
run. A real SendGrid parses on its own machines; this stand-in's Python JSON parsing of a
benchmark's 100 MB would otherwise take a core's worth of CPU from the process measured.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 30 * 1024 * 1024


@dataclass
class Accepted:
    message_id: str
    personalization: dict[str, Any]
    body: dict[str, Any]


def _errors(*items: tuple[str, str | None]) -> bytes:
    return json.dumps(
        {"errors": [{"message": m, "field": f, "help": None} for m, f in items]}
    ).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once


class SendGridServer:
    def __init__(
        self, api_key: str = "SG.test-key", *, hang_seconds: float = 2.0, latency: float = 0.0
    ) -> None:
        self.api_key = api_key
        self.hang_seconds = hang_seconds
        self.latency = latency
        self.concurrent = 0
        self.max_concurrent = 0
        self.script: list[str] = []
        self.requests = 0
        self.accepted: list[Accepted] = []
        self.request_headers: list[dict[str, str]] = []
        self.rate_reset_in = 1.0
        self.lock = threading.Lock()
        self.keep_bodies = True
        self.check_later = False
        self.deferred: list[tuple[str, str, bytes]] = []  # (message id, content type, body)
        self.recipients_accepted = 0
        self.batches: dict[str, str] = {}  # batch_id -> "" (open) or its scheduled status
        self.sandboxed = 0  # requests validated in sandbox mode (nothing delivered)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                with server.lock:
                    server.concurrent += 1
                    server.max_concurrent = max(server.max_concurrent, server.concurrent)
                try:
                    if server.latency:
                        time.sleep(server.latency)
                    server._handle(self)
                finally:
                    with server.lock:
                        server.concurrent -= 1

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SendGridServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def copies(self) -> Counter[str]:
        with self.lock:
            return Counter(
                to["email"].lower() for a in self.accepted for to in a.personalization["to"]
            )

    # --------------------------------------------------------------------------------
    def _reply(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if body:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body:
            h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests += 1
            self.request_headers.append(dict(h.headers.items()))
            action = self.script.pop(0) if self.script else ""
        if h.path.rstrip("/") in ("/v3/mail/batch", "/v3/user/scheduled_sends"):
            self._schedule_api(h, h.path.rstrip("/"))
            return
        if h.path.rstrip("/") != "/v3/mail/send":
            self._reply(h, 404, _errors(("not found", None)))
            return
        length = int(h.headers.get("Content-Length") or 0)
        if length >= MAX_BODY:
            h.rfile.read(length)
            self._reply(h, 413, _errors(("request body is too large", None)))
            return
        raw = h.rfile.read(length)
        auth = h.headers.get("Authorization", "")
        if action == "401" or auth != f"Bearer {self.api_key}":
            self._reply(
                h,
                401,
                _errors(("The provided authorization grant is invalid, expired, or revoked", None)),
            )
            return
        if action == "403":
            self._reply(h, 403, _errors(("access forbidden", None)))
            return
        if action == "429":
            reset = int(time.time() + self.rate_reset_in)
            self._reply(
                h,
                429,
                _errors(("too many requests", None)),
                {
                    "X-RateLimit-Limit": "600",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
            )
            return
        if action == "500":
            self._reply(h, 500, _errors(("internal error", None)))
            return
        if action == "400":
            self._reply(
                h, 400, _errors(("The from email does not contain a valid address.", "from.email"))
            )
            return
        if self.check_later:
            message_id = secrets.token_urlsafe(16)
            with self.lock:
                self.deferred.append((message_id, h.headers.get("Content-Type") or "", raw))
            self._reply(h, 202, b"", {"X-Message-Id": message_id})
            return
        body, problems = self._parse(h.headers.get("Content-Type") or "", raw)
        if problems:
            self._reply(h, 400, _errors(*problems))
            return
        if ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"):
            with self.lock:
                self.sandboxed += 1
            self._reply(h, 200)  # validated, not delivered
            return
        message_id = secrets.token_urlsafe(16)
        self._accept(message_id, body)
        if action == "hang":
            time.sleep(self.hang_seconds)  # accepted, but the client gave up waiting
        with contextlib.suppress(OSError):
            self._reply(h, 202, b"", {"X-Message-Id": message_id})

    def _accept(self, message_id: str, body: dict[str, Any]) -> None:
        with self.lock:
            for p in body["personalizations"]:
                self.accepted.append(Accepted(message_id, p, body if self.keep_bodies else {}))
                self.recipients_accepted += len(p["to"])

    def check_deferred(self) -> list[str]:
        """Parse and check the bodies answered 202 under ``check_later`` (accepting each
        valid one as a request would have been); what was wrong, one line a request."""
        with self.lock:
            deferred, self.deferred = self.deferred, []
        wrong = []
        for n, (message_id, content_type, raw) in enumerate(deferred):
            body, problems = self._parse(content_type, raw)
            if problems:
                wrong.append(f"request {n + 1}: " + "; ".join(m for m, _ in problems))
            elif ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"):
                with self.lock:
                    self.sandboxed += 1
            else:
                self._accept(message_id, body)
        return wrong

    def _schedule_api(self, h: BaseHTTPRequestHandler, path: str) -> None:
        """``POST /v3/mail/batch`` (a new batch id) and ``POST /v3/user/scheduled_sends``
        (cancel or pause a batch), as SendGrid's Cancel Scheduled Sends API has them."""
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if h.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            self._reply(h, 401, _errors(("authorization required", None)))
            return
        if path == "/v3/mail/batch":
            batch_id = secrets.token_urlsafe(24)
            with self.lock:
                self.batches[batch_id] = ""
            self._reply(h, 201, json.dumps({"batch_id": batch_id}).encode())
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._reply(h, 400, _errors(("Bad Request", None)))
            return
        batch_id, status = body.get("batch_id"), body.get("status")
        if batch_id not in self.batches:
            self._reply(h, 400, _errors(("batch id is not valid", "batch_id")))
            return
        if status not in ("cancel", "pause"):
            self._reply(h, 400, _errors(("status must be cancel or pause", "status")))
            return
        with self.lock:
            self.batches[batch_id] = status
        self._reply(h, 201, json.dumps({"batch_id": batch_id, "status": status}).encode())

    def _parse(
        self, content_type: str, raw: bytes
    ) -> tuple[dict[str, Any], list[tuple[str, str | None]]]:
        """The request's JSON body (parsed once: a benchmark's 100 MB of it) and what is
        wrong with it."""
        if "application/json" not in content_type:
            return {}, [("Content-Type should be application/json.", None)]
        try:
            body = json.loads(raw)
        except ValueError:
            return {}, [("Bad Request", None)]
        if not isinstance(body, dict):
            return {}, [("Bad Request", None)]
        return body, self._validate(body)

    def _validate(self, body: dict[str, Any]) -> list[tuple[str, str | None]]:
        problems: list[tuple[str, str | None]] = []
        ps = body.get("personalizations")
        if not isinstance(ps, list) or not ps:
            return [
                (
                    "The personalizations field is required and must have at least one personalization.",  # noqa: E501
                    "personalizations",
                )
            ]
        if len(ps) > 1000:
            problems.append(
                ("The personalizations field must have 1000 or fewer items.", "personalizations")
            )
        total = 0
        top_subject = isinstance(body.get("subject"), str) and body["subject"]
        for i, p in enumerate(ps):
            to = p.get("to") if isinstance(p, dict) else None
            if not isinstance(to, list) or not to:
                problems.append(
                    (
                        "The to array is required for all personalization objects, and must have at least one email object with a valid email address.",  # noqa: E501
                        f"personalizations.{i}.to",
                    )
                )
                continue
            for t in to:
                if not isinstance(t, dict) or "@" not in str(t.get("email", "")):
                    problems.append(
                        ("Does not contain a valid address.", f"personalizations.{i}.to")
                    )
                if isinstance(t, dict) and any(c in str(t.get("name", "")) for c in ";,"):
                    problems.append(("name may not contain ; or ,", f"personalizations.{i}.to"))
            total += len(to)
            if not top_subject and not p.get("subject"):
                problems.append(("The subject is required.", "subject"))
            for k, v in (p.get("headers") or {}).items():
                if not isinstance(v, str):
                    problems.append(
                        (f"header {k} must be a string", f"personalizations.{i}.headers")
                    )
            for k, v in (p.get("substitutions") or {}).items():
                if not isinstance(v, str):
                    problems.append(
                        (
                            f"substitution {k} must be a string",
                            f"personalizations.{i}.substitutions",
                        )
                    )
        if total > 1000:
            problems.append(
                ("The total number of recipients must be 1000 or fewer.", "personalizations")
            )
        sender = body.get("from")
        if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
            problems.append(("The from object must be provided for every email send.", "from"))
        content = body.get("content")
        if not body.get("template_id"):
            if not isinstance(content, list) or not content:
                problems.append(
                    (
                        "Unless a valid template_id is provided, the content parameter is required.",  # noqa: E501
                        "content",
                    )
                )
            else:
                types = [c.get("type") for c in content]
                if "text/plain" in types and types[0] != "text/plain":
                    problems.append(
                        (
                            "If present, text/plain must be first, followed by any other content.",
                            "content",
                        )
                    )
                if any(not c.get("value") for c in content):
                    problems.append(
                        (
                            "The content value must be a string at least one character in length.",
                            "content.0.value",
                        )
                    )
        if "send_at" in body:
            send_at = body["send_at"]
            now = time.time()
            if not isinstance(send_at, int) or isinstance(send_at, bool):
                problems.append(("send_at must be a Unix timestamp (integer)", "send_at"))
            elif not now - 60 <= send_at <= now + 72 * 3600:
                problems.append(("send_at may be at most 72 hours in the future", "send_at"))
        if "batch_id" in body and body["batch_id"] not in self.batches:
            problems.append(("The batch id is not valid.", "batch_id"))
        for j, att in enumerate(body.get("attachments") or []):
            if att.get("disposition") == "inline" and not att.get("content_id"):
                problems.append(
                    (
                        "content_id is required when disposition is inline",
                        f"attachments.{j}.content_id",
                    )
                )
        return problems
