#!/usr/bin/env bash
# The test command from README.md: builds the solution (which assembles the module into
# out/PSBackup) and runs the whole xunit suite. Prints one closing line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

configuration="${CONFIGURATION:-Release}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# The S3 contract tests run against a real S3-compatible server (s3rver, pinned in
# tests/s3/package-lock.json); install it on a fresh machine.
if [ ! -d tests/s3/node_modules ]; then
  npm ci --prefix tests/s3 --no-audit --no-fund
fi
# The metrics tests parse Export-BackupMetric's output with a real exposition-format parser
# (parse-prometheus-text-format, pinned in tests/prom/package-lock.json).
if [ ! -d tests/prom/node_modules/parse-prometheus-text-format ]; then
  npm ci --prefix tests/prom --no-audit --no-fund
fi

dotnet build PSBackup.sln -c "$configuration" -nologo -v quiet
set +e
dotnet test PSBackup.sln -c "$configuration" --no-build -nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# dotnet test prints one summary per test assembly: "Passed!  - Failed: 0, Passed: 42, Skipped: 0, ..."
summary=$(grep -Eo 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" || true)
if [ -z "$summary" ]; then
  echo "tests: no test summary found (build or test host failure)" >&2
  exit 1
fi
failed=$(echo "$summary" | awk -F'[:,]' '{s+=$2} END {print s}')
passed=$(echo "$summary" | awk -F'[:,]' '{s+=$4} END {print s}')
skipped=$(echo "$summary" | awk -F'[:,]' '{s+=$6} END {print s}')
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
