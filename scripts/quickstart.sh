#!/usr/bin/env bash
# Set up a virtualenv and run the main job on the built-in defaults: check and build
# vol-2.19, then send it to the sample subscribers through the outbox transport
# (one .eml per recipient under outbox/vol-2.19/; nothing leaves the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
.venv/bin/newsletter check vol-2.19
.venv/bin/newsletter build vol-2.19
.venv/bin/newsletter send vol-2.19 --yes
.venv/bin/newsletter status vol-2.19
echo
echo "next: . .venv/bin/activate   # puts \`newsletter\` on your PATH for this shell"
