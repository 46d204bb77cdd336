#!/usr/bin/env bash
# Run the CDNOW example end to end on the embedded defaults: a DuckDB
# warehouse and a SQLite state store, both in specs/cdnow/.personas/.
# The steps ingest the bundled orders, validate, plan and apply. A run then
# computes the audiences as of 1998-07-01 and syncs them to file destinations.
# Running it again is safe: nothing is ingested twice and nothing is re-sent.
set -euo pipefail
cd "$(dirname "$0")"

project=specs/cdnow
personas() { command personas --project "$project" "$@"; }
step() { printf '\n==> %s\n' "$*"; }

step "personas ingest $project/data/cdnow_orders.jsonl.gz"
personas ingest "$project/data/cdnow_orders.jsonl.gz"

step "personas validate"
personas validate

step "personas plan"
personas plan

step "personas apply --auto-approve"
personas apply --auto-approve

step "personas run --as-of 1998-07-01T00:00:00Z"
personas run --as-of 1998-07-01T00:00:00Z

step "Files written by the file destinations (members per audience)"
find "$project/exports" -type f ! -name '*.changes.*' | sort | while read -r file; do
    lines=$(wc -l < "$file")
    case "$file" in
        *.csv) members=$((lines - 1)) ;;  # minus the header row
        *) members=$lines ;;
    esac
    printf '  %-45s %7d members\n' "$file" "$members"
done
printf '\nChanges of each run are in the *.changes.<run id>.* files beside them.\n'
