#!/usr/bin/env bash
# Back-office benchmark at national scale: generates 1,000,000 requests over 35,000 tenants
# (once per database; re-running reuses them) and measures the inbox, filtered views, full-text
# search, a keyset page and the request page on SQLite and on PostgreSQL, release build.
# Results: bench/results/inbox-<backend>.json (with the territory's size, the date and the commit,
# which bench/run-load.sh's report shows beside target 3) and the printed table (see
# docs/performance.md). Environment: TENANTS (35000), REQUESTS (1000000), BACKENDS
# ("sqlite postgres"), BENCH_DIR (/var/tmp/guichet-bench), GUICHET_BENCH_POSTGRES_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=bench/load/common.sh
source "$root/bench/load/common.sh"
backends="${BACKENDS:-sqlite postgres}"
requests="${REQUESTS:-1000000}"
tenants="${TENANTS:-35000}"
dir="${BENCH_DIR:-/var/tmp/guichet-bench}"
pg_admin="${GUICHET_BENCH_POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_db="guichet_bench_${tenants}_${requests}"

cargo build --release -p guichet
bin="${CARGO_TARGET_DIR:-target}/release/guichet"

# Records what the bench measured in its report, so that nobody reads a smaller territory's
# figures (or an older build's) as this one's.
annotate() { # backend
  python3 - "bench/results/inbox-$1.json" "$tenants" "$requests" "$(git describe --always --dirty 2>/dev/null || echo unknown)" <<'PY'
import json, sys, time
path, tenants, requests, commit = sys.argv[1:]
d = json.load(open(path))
d.update(tenants=int(tenants), requests=int(requests), commit=commit,
         date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
json.dump(d, open(path, "w"))
PY
}

if [[ " $backends " == *" sqlite "* ]]; then
  echo "== SQLite"
  "$bin" generate --data-dir "$dir/sqlite-$tenants-$requests" --tenants "$tenants" --requests "$requests"
  GUICHET_BENCH_DATABASE_URL="sqlite://$dir/sqlite-$tenants-$requests/guichet.sqlite3" \
    cargo bench -p guichet --bench inbox
  annotate sqlite
fi

if [[ " $backends " == *" postgres "* ]] && pg_answers "$pg_admin"; then
  echo "== PostgreSQL"
  psql "$pg_admin" -Atqc "select 1 from pg_database where datname = '$pg_db'" | grep -q 1 \
    || psql "$pg_admin" -qc "create database $pg_db"
  pg_url="${pg_admin%/*}/$pg_db"
  DATABASE_URL="$pg_url" "$bin" generate --data-dir "$dir/pg" --tenants "$tenants" --requests "$requests"
  psql "$pg_url" -qc 'vacuum analyze' >/dev/null
  GUICHET_BENCH_DATABASE_URL="$pg_url" cargo bench -p guichet --bench inbox
  annotate postgres
fi
