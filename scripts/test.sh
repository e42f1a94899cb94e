#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: unit tests and loopback
# integration tests with Kamailio, SIPp and a pjsua2 caller. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/python -m pytest -p no:cacheprovider -q "$@"
