#!/usr/bin/env bash
# Set up everything the tests need (Debian packages for the real servers and browser,
# a virtualenv with the dev extras), then run ruff, mypy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
.venv/bin/ruff check newsletter tests bench
.venv/bin/mypy
.venv/bin/pytest -q -p no:cacheprovider "$@"
