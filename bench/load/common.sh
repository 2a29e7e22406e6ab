# Shell helpers shared by bench/run-load.sh and bench/run-cost.sh (sourced, not run; `root` is
# the repository).

tools() { python3 "$root/bench/load/tools.py" "$@"; }

# The demo territory's password, commune and service that the scenarios use.
# shellcheck disable=SC2034
password=demo-guichet-2026 tenant=saint-aubin-sur-lys service=question-mairie

# The `_csrf` of a page, with a cookie.
csrf_of() { curl -sf -b "$2" "$1" | grep -o 'name="_csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="//; s/"$//'; }

# Whether PostgreSQL answers at the admin URL $1; when it does not, says that its part is skipped.
pg_answers() {
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1 && return 0
  echo "== PostgreSQL not reachable at $1: skipped" >&2
  return 1
}
