#!/usr/bin/env bash
# Every measurement of issue #8's targets, in one command, and one report:
#
#   bench/run-all.sh
#
# 1. bench/run-inbox.sh: builds the release binary; the national-scale territory (35,000
#    tenants, 1,000,000 requests) on each database, generated once and reused, and the
#    back-office on it (target 3);
# 2. bench/run-load.sh: the load scenarios beside nginx and the raw durable inserts (targets 1,
#    2, 4 and 5), and the start-up on the national territory left by step 1.
#
# The report (bench/results/load.md, printed at the end) holds every target, target 3 included,
# read from step 1's bench/results/inbox-<backend>.json. It takes about 30 minutes on a 2-core
# machine the first time (7 of them generating the territories), 25 after. The environment of
# both scripts applies (BACKENDS, DURATION, CONCURRENCY, TENANTS, REQUESTS, BENCH_DIR, KEEP, …;
# see their headers and docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."

export GUICHET_BIN="${GUICHET_BIN:-${CARGO_TARGET_DIR:-target}/release/guichet}"

# Results of an earlier run must not stand in for this one's.
rm -f bench/results/inbox-sqlite.json bench/results/inbox-postgres.json
bench/run-inbox.sh
bench/run-load.sh
