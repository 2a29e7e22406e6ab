#!/usr/bin/env bash
# Guichet's own CPU cost per page, in instructions, counted by valgrind's callgrind.
#
# Throughput under load moves by ±15 % between identical runs on a shared virtual machine, more
# than most single changes are worth; an instruction count does not move with the machine's
# speed or load (the same binary, data and requests give the same count within a fraction of a
# per cent), so a change to the code's cost shows here even when wrk cannot see it. It counts
# only the guichet process (hyper, tokio, handlers, templates, the SQLite engine inside it),
# not the kernel's TCP work nor PostgreSQL's server processes.
#
#   GUICHET_BIN=/path/to/release/guichet bench/run-cost.sh
#   REQUESTS=200 BACKENDS=sqlite PAGES="fresh form" bench/run-cost.sh
#
# Environment: GUICHET_BIN (default ${CARGO_TARGET_DIR:-target}/release/guichet), BACKENDS
# ("sqlite postgres"), PAGES ("catalogue fresh form inbox search"), REQUESTS per page (300,
# after 30 not counted), GUICHET_BENCH_POSTGRES_ADMIN_URL (as bench/run-load.sh), LOAD_DIR,
# KEEP=1 (keep the work directory: one callgrind dump per page, for `callgrind_annotate`).
# Output: a Markdown table on stdout and in bench/results/cost.md, progress on stderr.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${GUICHET_BIN:-${CARGO_TARGET_DIR:-target}/release/guichet}"
backends="${BACKENDS:-sqlite postgres}"
pages="${PAGES:-catalogue fresh form inbox search}"
requests="${REQUESTS:-300}"
warmup=30
pg_admin="${GUICHET_BENCH_POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work_root="${LOAD_DIR:-/var/tmp/guichet-load}/cost-$(date +%Y%m%d-%H%M%S)-$$"
results="$root/bench/results"
# shellcheck source=bench/load/common.sh
source "$root/bench/load/common.sh"

citizen=camille.martin@exemple.test
agent="agent@$tenant.test"

[[ -x "$bin" ]] || { echo "no guichet binary at $bin (set GUICHET_BIN or build it)" >&2; exit 1; }
for tool in valgrind callgrind_control curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
mkdir -p "$results" "$work_root"
gpid="" pg_db=""

cleanup() {
  if [[ -n "$gpid" ]]; then kill -TERM "$gpid" 2>/dev/null || true; wait "$gpid" 2>/dev/null || true; fi
  if [[ -n "$pg_db" ]]; then psql "$pg_admin" -qc "drop database if exists $pg_db" >/dev/null 2>&1 || true; fi
  if [[ "${KEEP:-0}" == 1 ]]; then
    echo "kept: $work_root (one callgrind dump per page: callgrind_annotate FILE)" >&2
  else
    rm -rf "$work_root"
  fi
}
trap cleanup EXIT


rows=()
for backend in $backends; do
  w="$work_root/$backend"
  mkdir -p "$w/data"
  unset DATABASE_URL GUICHET_DATABASE_URL
  if [[ $backend == postgres ]]; then
    pg_answers "$pg_admin" || continue
    pg_db="guichet_cost_$(date +%s)_$$"
    psql "$pg_admin" -qc "create database $pg_db"
    export DATABASE_URL="${pg_admin%/*}/$pg_db"
  fi
  echo "== $backend" >&2
  port=$(tools free-port)
  base="http://127.0.0.1:$port"
  # No job runner: its polling would add instructions that depend on how long the run takes.
  GUICHET_JOBS_IN_PROCESS=false valgrind --tool=callgrind --callgrind-out-file="$w/cg.%p" \
    "$bin" demo --data-dir "$w/data" --listen "127.0.0.1:$port" >"$w/out" 2>"$w/log" &
  gpid=$!
  tools wait-healthz "$base/healthz" 600 >/dev/null || { tail -20 "$w/log" >&2; exit 1; }
  cookie=$(tools login citizen "$base" "$citizen" "$password")
  agent_cookie=$(tools login agent "$base" "$agent" "$password")
  token=$(csrf_of "$base/$tenant/demarches/$service/formulaire" "$cookie")
  draft=$(curl -s -o /dev/null -w '%{redirect_url}' -b "$cookie" --data "_csrf=$token" "$base/$tenant/demarches/$service/commencer")
  draft_path="/${draft#*://*/}"
  [[ "$draft_path" == /$tenant/brouillons/*/etape/1 ]] || { echo "starting a draft answered $draft" >&2; exit 1; }
  for page in $pages; do
    case "$page" in
      catalogue) path="/$tenant/demarches"; c="" ;;
      fresh) path="/$tenant/demarches/$service/formulaire"; c=$cookie ;;
      form) path=$draft_path; c=$cookie ;;
      inbox) path="/agents/"; c=$agent_cookie ;;
      search) path="/agents/?q=horaires"; c=$agent_cookie ;;
      *) echo "unknown page $page" >&2; exit 1 ;;
    esac
    tools repeat "$base$path" "$c" "$warmup"
    callgrind_control -z "$gpid" >/dev/null 2>&1
    tools repeat "$base$path" "$c" "$requests"
    dumps() { find "$w" -name "cg.$gpid.*" | wc -l; }
    before=$(dumps)
    callgrind_control -d "$gpid" >/dev/null 2>&1
    [[ $(dumps) -gt $before ]] || { echo "callgrind wrote no dump" >&2; exit 1; }
    dump=$(ls -t "$w"/cg."$gpid".* | head -1)
    total=$(tools callgrind-total "$dump")
    per=$(( total / requests ))
    echo "  $page: $per instructions per request ($requests requests)" >&2
    rows+=("| $page | $backend | $path | $per |")
  done
  kill -TERM "$gpid"; wait "$gpid" 2>/dev/null || true; gpid=""
  if [[ -n "$pg_db" ]]; then psql "$pg_admin" -qc "drop database if exists $pg_db" >/dev/null; pg_db=""; fi
done

{
  echo "Instructions per request counted by callgrind in the guichet process ($requests requests per page, one connection, after $warmup not counted; binary $(basename "$bin"), $(date -u +%Y-%m-%dT%H:%MZ))."
  echo
  echo "| page | backend | path | instructions per request |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$results/cost.md"
