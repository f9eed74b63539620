#!/usr/bin/env bash
# Installs everything on a fresh Debian machine, then runs the whole test suite: lint, types, unit
# tests, the real-model speech tests and the end-to-end tests against a real Asterisk 22,
# redis-server and SIPp agents (the suite starts and stops those itself).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
.venv/bin/ruff check .
.venv/bin/mypy  # strict, on the seams listed in pyproject.toml's [tool.mypy]
exec .venv/bin/pytest "$@"
