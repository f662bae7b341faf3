#!/usr/bin/env bash
# Set up a virtualenv with the dev extras and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
.venv/bin/ruff check newsletter tests bench
.venv/bin/mypy
.venv/bin/pytest -q -p no:cacheprovider "$@"
