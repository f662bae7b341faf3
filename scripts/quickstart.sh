#!/usr/bin/env bash
# Set up a virtualenv and run the main job on the built-in defaults: build vol-2.19 and
# send it to the sample subscribers through the outbox transport (nothing leaves the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
.venv/bin/newsletter check vol-2.19
.venv/bin/newsletter build vol-2.19
