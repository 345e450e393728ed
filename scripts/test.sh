#!/usr/bin/env bash
# The whole test suite: lint, types, frontend checks, then pytest on SQLite
# and again on PostgreSQL. With CI=true, tests that need PostgreSQL, Redis or
# Chromium fail when the service is missing instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== frontend"
(cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run --silent typecheck && npm test --silent)

echo "== pytest (SQLite)"
python -m pytest "$@"

PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
if python - "$PG_URL" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://"), connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL not reachable: {exc}")
    sys.exit(1)
PY
then
  echo "== pytest (PostgreSQL)"
  DATABASE_URL="$PG_URL" python -m pytest tests/studio tests/collab -m "not browser" "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is required in CI"; exit 1
else
  echo "== pytest (PostgreSQL): skipped, no server at $PG_URL"
fi
