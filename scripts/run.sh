#!/usr/bin/env bash
# Starts Roomtone on the embedded default (SQLite, in-memory channel layer,
# jobs on a worker thread, files under var/) with a demo project ready.
# Open http://127.0.0.1:8000/ and log in as demo / roomtone-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py resume_analysis
.venv/bin/python manage.py resume_renders --stale-after 0
.venv/bin/python manage.py seed_demo --wait
echo "Roomtone on http://${HOST:-127.0.0.1}:${PORT:-8000}/  (user demo, password ${ROOMTONE_DEMO_PASSWORD:-roomtone-demo})"
exec .venv/bin/daphne -b "${HOST:-127.0.0.1}" -p "${PORT:-8000}" studio.asgi:application
