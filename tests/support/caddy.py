"""The real Caddy (Debian package ``caddy``) in front of a real ``newsletter serve``, both on
127.0.0.1 and random free ports, the way deploy/ describes.

Caddy runs deploy/Caddyfile with what a test needs on top: its own HOME and XDG folders
(so its CA and certificates stay in the test's temp folder), ``tls internal`` (its own CA;
the test trusts that CA's root, never ``verify=False``), no trust-store install, no
port-80 redirect listener, the admin API off (as in the deploy file), ``bind 127.0.0.1``.
Both processes are killed at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

SITE = "digest.example.test"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}: {log.read_text(errors='replace')}")


def caddyfile_for_test(https_port: int) -> str:
    """deploy/Caddyfile plus the test's global options and site settings."""
    text = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    options = (
        "\tadmin off\n"
        "\tskip_install_trust\n"
        "\tauto_https disable_redirects\n"
        f"\thttps_port {https_port}\n"
    )
    assert "\tadmin off\n" in text, "deploy/Caddyfile turns the admin API off"
    text = text.replace("\tadmin off\n", options, 1)
    opening = "{$NEWSLETTER_SITE:digest.example.org} {\n"
    assert opening in text, "deploy/Caddyfile names its site by NEWSLETTER_SITE"
    return text.replace(opening, opening + "\tbind 127.0.0.1\n\ttls internal\n", 1)


@dataclass(frozen=True)
class Deployment:
    """Where the deployment answers and how to reach it like a browser would."""

    public_url: str  # https://digest.example.test:<port>
    https_port: int
    backend_port: int
    root_cert: Path  # Caddy's local CA

    def client(self, source: str = "127.0.0.1", **kwargs: object) -> httpx.Client:
        """An https client that connects from ``source`` and trusts Caddy's CA only."""
        context = ssl.create_default_context(cafile=str(self.root_cert))
        transport = _SiteTransport(verify=context, local_address=source)
        return httpx.Client(base_url=self.public_url, transport=transport, timeout=30, **kwargs)


class _SiteTransport(httpx.HTTPTransport):
    """Connects to 127.0.0.1 but speaks TLS (SNI, certificate check) and HTTP (Host) for
    the site's name, so no DNS entry is needed and cookies stay with the site."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == SITE:
            request = httpx.Request(
                request.method,
                request.url.copy_with(host="127.0.0.1"),
                headers=request.headers,
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": SITE},
            )
        return super().handle_request(request)


@contextmanager
def caddy_and_serve(
    home: Path, tmp: Path, env: Mapping[str, str], *, startup: float = 30.0
) -> Iterator[Deployment]:
    """``newsletter serve`` in ``home`` with ``env``, and Caddy in front of it."""
    if not Path(CADDY).exists():
        pytest.fail(f"caddy not found at {CADDY}: run `bash scripts/test.sh` (it installs it)")
    https_port, backend_port = free_port(), free_port()
    public_url = f"https://{SITE}:{https_port}"
    with ExitStack() as stack:
        serve_log = tmp / "serve.log"
        serve_env = {
            **os.environ,
            **env,
            "NEWSLETTER_PUBLIC_URL": public_url,
            "NEWSLETTER_SERVE_HOST": "127.0.0.1",
            "NEWSLETTER_SERVE_PORT": str(backend_port),
        }
        serve = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "serve"],
            cwd=home,
            env=serve_env,
            stdout=stack.enter_context(serve_log.open("wb")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(_kill, serve)
        config = tmp / "Caddyfile"
        config.write_text(caddyfile_for_test(https_port), encoding="utf-8")
        caddy_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp / "caddy-home"),
            "XDG_DATA_HOME": str(tmp / "caddy-data"),
            "XDG_CONFIG_HOME": str(tmp / "caddy-config"),
            "NEWSLETTER_SITE": f"{SITE}:{https_port}",
            "NEWSLETTER_UPSTREAM": f"127.0.0.1:{backend_port}",
        }
        caddy_log = tmp / "caddy.log"
        caddy = subprocess.Popen(
            [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"],
            cwd=tmp,
            env=caddy_env,
            stdout=stack.enter_context(caddy_log.open("wb")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(_kill, caddy)
        wait_for_port(backend_port, serve, serve_log, startup)
        wait_for_port(https_port, caddy, caddy_log, startup)
        root = tmp / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        deadline = time.monotonic() + startup
        while not root.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        deployment = Deployment(public_url, https_port, backend_port, root)
        _wait_for_certificate(deployment, caddy_log, deadline)
        yield deployment


def _wait_for_certificate(deployment: Deployment, log: Path, deadline: float) -> None:
    """Caddy issues the site's certificate just after it starts listening."""
    while True:
        try:
            with deployment.client() as client:
                client.get("/static/favicon.svg")
            return
        except (httpx.ConnectError, httpx.ReadError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no TLS from Caddy: {exc}: {log.read_text()}") from exc
            time.sleep(0.2)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
