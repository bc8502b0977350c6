#!/usr/bin/env bash
# 100 kill -9 / restart / unseal cycles under write load; reports acknowledged writes lost
# (must be 0). Not part of CI: it takes several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/coffer-target}"
COFFER_CRASH_CYCLES="${1:-100}" cargo test -p coffer --test crash -- --nocapture 2>&1 | grep -E "crash cycle|test result|panicked|lost"
