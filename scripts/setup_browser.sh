#!/usr/bin/env bash
# What the browser tests need (tests/browser, benchmarks/report_size.py): Debian's chromium
# and Playwright's Python package in .venv. Playwright drives the system chromium through
# its executable path; no Playwright browser build is ever downloaded (this machine reaches
# only package registries). Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
chromium=${SERVESCOPE_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
  fi
  echo "installing Debian's chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends chromium fonts-liberation >/dev/null
fi
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
if ! .venv/bin/python -c 'import playwright' 2>/dev/null; then
  echo "installing playwright (Python package only; the browser is Debian's chromium)"
  .venv/bin/python -m pip install -q -e '.[browser]'
fi
"$chromium" --version 2>/dev/null  # (Debian's launcher script may warn about /dev/shm)
