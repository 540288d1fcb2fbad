#!/usr/bin/env bash
#! The front-end speed benchmark: lexing, parsing, checking, planning and formatting of
#! generated 10k- and 100k-line packs against serde_yaml/serde_json on the same workflow,
#! peak memory per phase and super-linearity probes. Prints figures; asserts nothing.
#!
#! Usage: scripts/bench-frontend.sh            # full run (~1-2 minutes on 2 cores)
#!        GX_BENCH_QUICK=1 scripts/bench-frontend.sh   # smoke run (10k lines only)
set -euo pipefail
cd "$(dirname "$0")/.."
# `cargo bench` builds with the release profile (the `bench` profile inherits it).
exec cargo bench -p dsl-check --bench frontend "$@"
