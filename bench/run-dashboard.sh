#!/usr/bin/env bash
# Dashboard benchmark: generates 1,000,000 requests over one EPCI and its 32 communes (once per
# database; re-running reuses them) and measures the consolidated EPCI dashboard on SQLite and
# on PostgreSQL, release build. Results: bench/results/dashboard-<backend>.json (docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${REQUESTS:-1000000}"
tenants="${TENANTS:-33}"
dir="${BENCH_DIR:-/var/tmp/guichet-bench}"
pg_admin="${GUICHET_BENCH_POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_db="guichet_bench_${tenants}_${requests}"

cargo build --release -p guichet
bin="${CARGO_TARGET_DIR:-target}/release/guichet"

echo "== SQLite"
"$bin" generate --data-dir "$dir/sqlite-$tenants-$requests" --tenants "$tenants" --requests "$requests"
GUICHET_BENCH_DATABASE_URL="sqlite://$dir/sqlite-$tenants-$requests/guichet.sqlite3" \
  cargo bench -p guichet --bench dashboard

if psql "$pg_admin" -Atqc 'select 1' >/dev/null 2>&1; then
  echo "== PostgreSQL"
  psql "$pg_admin" -Atqc "select 1 from pg_database where datname = '$pg_db'" | grep -q 1 \
    || psql "$pg_admin" -qc "create database $pg_db"
  pg_url="${pg_admin%/*}/$pg_db"
  DATABASE_URL="$pg_url" "$bin" generate --data-dir "$dir/pg" --tenants "$tenants" --requests "$requests"
  psql "$pg_url" -qc 'vacuum analyze' >/dev/null
  GUICHET_BENCH_DATABASE_URL="$pg_url" cargo bench -p guichet --bench dashboard
else
  echo "PostgreSQL not reachable at $pg_admin: skipped"
fi
