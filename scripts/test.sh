#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: unit tests and loopback
# integration tests with Kamailio, SIPp, a pjsua2 caller, the real speech models
# and an Ollama-protocol double. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh" --tests
cd "$root"
exec .venv/bin/python -m pytest -p no:cacheprovider -q "$@"
