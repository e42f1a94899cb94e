#!/usr/bin/env bash
# Set up (first run only) and run victoria-sip with the given arguments, e.g.
#   ./scripts/victoria.sh serve
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
exec "$root/.venv/bin/victoria-sip" "$@"
