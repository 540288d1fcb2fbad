#!/usr/bin/env bash
# Runtime speed: engine overhead per node (in memory, SQLite, Postgres), makespan against the
# critical path with simulated latency, memory and storage per node. Prints figures; asserts
# nothing. Postgres figures need GALAXY_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test).
# Arguments pick sections: overhead, makespan, memory (all when none). Figures: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p runtime --bench engine -- "$@"
