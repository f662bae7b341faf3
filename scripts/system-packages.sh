#!/usr/bin/env bash
# Install the real servers and browser the tests drive on 127.0.0.1 (Debian packages):
# chromium (browser tests), dovecot-imapd (IMAP), spamassassin (email quality),
# postfix (smtp-sink/smtp-source for bench/bench_send.py, and a throw-away instance that
# bounces mail for the VERP test: tests/support/postfix.py), fonts-noto-cjk (Japanese
# glyphs for the browser tests of the Japanese pages), libmail-dkim-perl (SpamAssassin's
# DKIM plugin, for the DKIM signing test), caddy (the reverse proxy of deploy/, tested in
# front of `newsletter serve`), w3m (the text-browser rendering of the email: the preheader
# must not show as junk). Does nothing when all are
# present; needs root (or sudo) otherwise.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/sbin/postfix ] || need+=(postfix)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
command -v spamassassin >/dev/null 2>&1 || need+=(spamassassin)
perl -MMail::DKIM -e1 >/dev/null 2>&1 || need+=(libmail-dkim-perl)
[ -d /usr/share/fonts/opentype/noto ] && ls /usr/share/fonts/opentype/noto/NotoSansCJK-* >/dev/null 2>&1 \
  || need+=(fonts-noto-cjk)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v w3m >/dev/null 2>&1 || need+=(w3m)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: the tests need these Debian packages: ${need[*]}" >&2
    echo "hint: run as root, or: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
echo "apt-get install ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# postfix asks no questions when told it is a local-only install
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
