#!/usr/bin/env bash
# `make drill`: the main job, on file-backed LUNs (no SAN needed).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bin/xcopy-agent drill "$@"
