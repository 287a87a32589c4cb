#!/usr/bin/env bash
# Builds vkanchor if needed (installing its Debian packages) and runs it:
#   bash scripts/vkanchor.sh devices
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/setup.sh" >&2
exec "$here/${VKA_BUILD_DIR:-build}/vkanchor" "$@"
