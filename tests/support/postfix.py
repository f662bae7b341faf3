"""A throw-away Postfix on 127.0.0.1, never the system instance: its own
config_directory, queue_directory and data_directory in a temp folder, a random port.

It accepts mail for ``postfix.example.net`` from anyone on 127.0.0.1 and delivers locally; a
recipient with no account there fails in the local delivery agent, after acceptance,
so Postfix writes a real delivery report (its bounce daemon) and sends it to the
envelope sender through ``relayhost`` (a test's aiosmtpd): the path a real bounce
takes back to a VERP address. Needs root (Postfix's master drops to the ``postfix``
user) and the Debian ``postfix`` package (scripts/system-packages.sh).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.support.smtp_server import free_port

__all__ = ["DOMAIN", "PostfixServer"]

DOMAIN = "postfix.example.net"
_SERVICES = """\
{port}      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixServer:
    """``with PostfixServer(tmp, relay_port) as pf: pf.port``: Postfix on 127.0.0.1."""

    def __init__(self, root: Path, relay_port: int) -> None:
        self.root = root
        self.port = free_port()
        self.config = root / "etc"
        self.queue = root / "spool"
        self.data = root / "lib"
        self.log = root / "maillog"
        self.relay_port = relay_port

    def _main_cf(self) -> str:
        return "\n".join(
            [
                "compatibility_level = 3.6",
                f"queue_directory = {self.queue}",
                f"data_directory = {self.data}",
                "mail_owner = postfix",
                "setgid_group = postdrop",
                f"maillog_file = {self.log}",
                f"maillog_file_prefixes = {self.root}",
                "inet_interfaces = 127.0.0.1",
                "inet_protocols = ipv4",
                f"myhostname = mx.{DOMAIN}",
                f"mydomain = {DOMAIN}",
                f"mydestination = {DOMAIN}",
                "mynetworks = 127.0.0.0/8",
                # accept any local part at SMTP time: the unknown user fails in local(8),
                # after acceptance, which is what makes Postfix write a bounce message
                "local_recipient_maps =",
                "alias_maps =",
                "alias_database =",
                f"relayhost = [127.0.0.1]:{self.relay_port}",
                "smtp_tls_security_level = none",
                "smtpd_tls_security_level = none",
                "smtp_dns_support_level = disabled",
                "disable_dns_lookups = yes",
                "biff = no",
                "queue_run_delay = 1s",
                "minimal_backoff_time = 1s",
                "maximal_backoff_time = 2s",
                "bounce_queue_lifetime = 0",
                "delay_warning_time = 0",
                "smtpd_banner = $myhostname ESMTP",
                "",
            ]
        )

    def __enter__(self) -> PostfixServer:
        if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").exists():
            raise RuntimeError("postfix is not installed (scripts/system-packages.sh)")
        # Postfix's daemons run as the postfix user: the folders on the way must be
        # traversable (pytest's tmp_path and tempfile make them 0700)
        self.root.mkdir(parents=True, exist_ok=True)
        for parent in (self.root, *self.root.parents):
            if parent == Path(parent.anchor):
                break
            parent.chmod(parent.stat().st_mode | 0o055)
        for folder in (self.config, self.queue, self.data):
            folder.mkdir(parents=True, exist_ok=True)
        (self.config / "main.cf").write_text(self._main_cf())
        (self.config / "master.cf").write_text(
            _SERVICES.format(port=f"127.0.0.1:{self.port}").replace("1000?", "1000")
        )
        shutil.chown(self.data, "postfix", "postfix")
        self._postfix("start")
        deadline = time.monotonic() + 20
        import socket

        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"postfix did not listen on 127.0.0.1:{self.port}: {self.logs()}")

    def _postfix(self, command: str) -> None:
        result = subprocess.run(
            ["/usr/sbin/postfix", "-c", str(self.config), command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0 and command == "start":
            raise RuntimeError(f"postfix {command} failed: {result.stderr}{result.stdout}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __exit__(self, *exc: object) -> None:
        self._postfix("stop")
        pid = self.queue / "pid" / "master.pid"
        deadline = time.monotonic() + 10
        while pid.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
