"""A real Dovecot IMAP server on 127.0.0.1 for the inbound tests.

:func:`start_dovecot` writes a throw-away configuration (random free port, plaintext
auth on loopback, one passwd-file user, maildir storage, no TLS) into its own folder,
runs ``dovecot -F -c CONF`` as a subprocess and waits for the IMAP greeting.

With ``tls=(cert, key)`` it also serves TLS: STARTTLS on the IMAP port and implicit TLS
on a second port (``imaps_port``, 993-style). With ``introspection_url`` it adds
Dovecot's oauth2 passdb for the XOAUTH2 and OAUTHBEARER mechanisms, which asks that
RFC 7662 endpoint (``introspection_mode = post``) whether a bearer token is live and
whose it is; the password user stays for the tests' own set-up connections. Dovecot
never gives mail access to UID 0, so when the tests run as root the mail processes run
as the ``dovecot`` system user and the folder is made readable for it.

Used as a context manager::

    with start_dovecot() as server:
        imap = server.connect()       # logged-in imaplib.IMAP4
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

DOVECOT = Path("/usr/sbin/dovecot")
USER = "contact"
PASSWORD = "imap-test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DovecotServer:
    host: str
    port: int
    username: str
    password: str
    folder: Path
    process: subprocess.Popen[bytes]
    imaps_port: int = 0  # implicit TLS (0: not served)

    @property
    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def connect(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        imap.login(self.username, self.password)
        return imap

    def settings(self) -> dict[str, object]:
        """Overrides for ``load_settings`` that point the contact mailbox here."""
        return {
            "imap_host": self.host,
            "imap_port": self.port,
            "imap_security": "none",
            "imap_username": self.username,
            "imap_password": self.password,
        }


def _mail_user() -> tuple[int, int, str, str]:
    """uid, gid, user and group names the mail processes run as."""
    if os.getuid() != 0:
        uid, gid = os.getuid(), os.getgid()
        return uid, gid, pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
    entry = pwd.getpwnam("dovecot")
    return entry.pw_uid, entry.pw_gid, entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name


def _oauth2_conf(introspection_url: str) -> str:
    """Dovecot 2.3's oauth2 passdb: POST the token, require ``active: true``, take the
    login name from ``username`` (Dovecot checks it equals the name the client gave)."""
    return f"""\
introspection_mode = post
introspection_url = {introspection_url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


def _config(folder: Path, port: int, *, imaps_port: int, tls: bool, oauth2: bool) -> str:
    uid, gid, user, group = _mail_user()
    login_user = user
    if os.getuid() == 0:
        with suppress(KeyError):
            login_user = pwd.getpwnam("dovenull").pw_name
    ssl = f"ssl = yes\nssl_cert = <{folder}/tls/server.pem\nssl_key = <{folder}/tls/server.key"
    oauth_passdb = f"""\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {folder}/dovecot-oauth2.conf.ext
}}
"""
    return f"""\
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl if tls else "ssl = no"}
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if oauth2 else ""}
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{folder}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
{oauth_passdb if oauth2 else ""}passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={folder}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@contextmanager
def start_dovecot(
    timeout: float = 15.0,
    *,
    tls: tuple[Path, Path] | None = None,
    introspection_url: str | None = None,
) -> Iterator[DovecotServer]:
    """Run a private Dovecot until the block ends; raise RuntimeError if it won't start.

    ``tls`` is a certificate and key (PEM files) to serve; ``introspection_url`` turns
    on the oauth2 passdb (credentials, if any, in the URL's userinfo).
    """
    folder = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
    uid, gid, _user, _group = _mail_user()
    try:
        os.chmod(folder, 0o755)
        for name in ("mail", "home"):
            (folder / name).mkdir()
            os.chown(folder / name, uid, gid)
        (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        os.chmod(folder / "passwd", 0o644)
        port = free_port()
        imaps_port = free_port() if tls else 0
        if tls:
            (folder / "tls").mkdir()
            shutil.copy(tls[0], folder / "tls" / "server.pem")
            shutil.copy(tls[1], folder / "tls" / "server.key")
        if introspection_url:
            (folder / "dovecot-oauth2.conf.ext").write_text(_oauth2_conf(introspection_url))
        conf = folder / "dovecot.conf"
        conf.write_text(
            _config(
                folder,
                port,
                imaps_port=imaps_port,
                tls=tls is not None,
                oauth2=introspection_url is not None,
            )
        )
        process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        server = DovecotServer("127.0.0.1", port, USER, PASSWORD, folder, process, imaps_port)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                out = process.stdout.read().decode(errors="replace") if process.stdout else ""
                raise RuntimeError(f"dovecot exited ({process.returncode}): {out}{server.log}")
            try:
                server.connect().logout()
                break
            except (OSError, imaplib.IMAP4.error):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not answer on {port}: {server.log}") from None
                time.sleep(0.05)
        try:
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
