#!/usr/bin/env bash
# Writes fuzz/corpus/{parse_frame,session_events,ws_frames} from tests/data/traces.
set -euo pipefail
cd "$(dirname "$0")"
cargo run --quiet --bin build-corpus -- ../tests/data/traces corpus
