#!/usr/bin/env bash
# The test command from README.md: builds the solution (which assembles the module into
# out/PSBackup), runs the whole xunit suite, then every Pester test against the assembled module.
# Then the Windows leg under Wine (scripts/wine-test.sh) when Wine is installed.
# Prints one closing line "tests: N passed, N failed, N skipped (xunit p/f/s, pester p/f/s, wine p/f/s)".
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
# The Azure Blob contract tests and the runbook test run against Azurite, Azure Storage's
# emulator (pinned in tests/azure/package-lock.json).
if [ ! -d tests/azure/node_modules/azurite ]; then
  npm ci --prefix tests/azure --no-audit --no-fund
fi
# The metrics tests parse Export-BackupMetric's output with a real exposition-format parser
# (parse-prometheus-text-format, pinned in tests/prom/package-lock.json).
if [ ! -d tests/prom/node_modules/parse-prometheus-text-format ]; then
  npm ci --prefix tests/prom --no-audit --no-fund
fi

# LMDB 0.9 (Debian liblmdb0): live LMDB snapshots of UnisonDB stores go through LMDB's own
# environment copy; lmdb-utils' mdb_load is the concurrent writer in the snapshot tests.
if ! { ldconfig -p 2>/dev/null | grep -q 'liblmdb\.so\.0'; } || ! command -v mdb_load >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq liblmdb0 lmdb-utils) >/dev/null 2>&1 || echo "test.sh: could not install liblmdb0/lmdb-utils; LMDB tests will fail" >&2
  fi
fi

# pwsh 7.6.10 and Pester 5.9.1 from NuGet, for the Pester half of the suite.
tools=$(bash scripts/install-pwsh.sh)
pwsh=$(echo "$tools" | sed -n 's/^pwsh=//p')
pester=$(echo "$tools" | sed -n 's/^pester=//p')

dotnet build PSBackup.sln -c "$configuration" -nologo -v quiet
set +e
dotnet test PSBackup.sln -c "$configuration" --no-build -nologo "$@" 2>&1 | tee "$log"
xunit_status=${PIPESTATUS[0]}
# The repository suite again with the managed zstd codec (ZstdSharp.Port, what Windows and Azure
# Automation run): every repository, repository-operation, maintenance and repository-restore test,
# plus ZstdCodecTests, which asserts this pass really ran on the managed codec. Its summary line
# counts in the totals like the first pass's.
managed_filter="FullyQualifiedName~PSBackup.Engine.Tests.Repository.|FullyQualifiedName~PSBackup.Engine.Tests.RepositoryOps.|FullyQualifiedName~PSBackup.Engine.Tests.Maintenance.|FullyQualifiedName~PSBackup.Engine.Tests.Restore.Repository|FullyQualifiedName~PSBackup.Engine.Tests.Cli.CliRepository|FullyQualifiedName~PSBackup.Engine.Tests.Cli.CliRestore"
echo "xunit: repository suite with PSBACKUP_ZSTD=managed"
PSBACKUP_ZSTD=managed dotnet test tests/PSBackup.Engine.Tests -c "$configuration" --no-build -nologo --filter "$managed_filter" "$@" 2>&1 | tee -a "$log"
managed_status=${PIPESTATUS[0]}
if [ "$managed_status" -ne 0 ]; then xunit_status=$managed_status; fi
# The CLI tests again against the published binary (Native AOT on Linux, scripts/publish-cli.sh):
# every test that runs psbackup through Support/TestCli.cs then starts that executable instead of
# calling CliApp in-process, so what only breaks in the AOT build (a type without build-time JSON
# metadata, a trimmed member, a native library it cannot find) fails here. Counted in the totals.
cli_filter="FullyQualifiedName~PSBackup.Engine.Tests.Cli.|FullyQualifiedName~PSBackup.Engine.Tests.Health.HealthTests|FullyQualifiedName~PSBackup.Engine.Tests.RepositoryOps.KeyFileTests|FullyQualifiedName~PSBackup.Engine.Tests.Hostile.|FullyQualifiedName~PSBackup.Engine.Tests.Maintenance.|FullyQualifiedName~PSBackup.Engine.Tests.ObjectStore.ObjectSelectionTests|FullyQualifiedName~PSBackup.Engine.Tests.Snapshots.UnisonPitrTests"
echo "xunit: CLI tests against the published psbackup"
aot_mode=""; [ "${PSBACKUP_AOT:-}" = "required" ] && aot_mode=--aot-only
if published=$(bash scripts/publish-cli.sh out/cli-published $aot_mode); then
  PSBACKUP_TEST_CLI="$PWD/$published" dotnet test tests/PSBackup.Engine.Tests -c "$configuration" --no-build -nologo --filter "$cli_filter" "$@" 2>&1 | tee -a "$log"
  published_status=${PIPESTATUS[0]}
else
  echo "xunit: could not publish the CLI"; published_status=1
fi
if [ "$published_status" -ne 0 ]; then xunit_status=$published_status; fi
# Every Pester test (Integration ones included) against the module the build just assembled,
# in a fresh pwsh; -OutputFormat Text keeps a logged run plain text.
"$pwsh" -NoProfile -NonInteractive -OutputFormat Text -File scripts/pester.ps1 -PesterPath "$pester" 2>&1 | tee -a "$log"
pester_status=${PIPESTATUS[0]}
# The Windows leg: the CLI and chosen xunit classes published for win-x64 and run under Wine
# (.ci/run installs it and sets PSBACKUP_WINE=required). PSBACKUP_WINE=off skips it on a
# developer machine; without Wine it is skipped with a note.
wine_status=0
if [ "${PSBACKUP_WINE:-}" != "off" ] && command -v wine >/dev/null 2>&1; then
  CONFIGURATION="$configuration" bash scripts/wine-test.sh 2>&1 | tee -a "$log"
  wine_status=${PIPESTATUS[0]}
elif [ "${PSBACKUP_WINE:-}" = "required" ]; then
  echo "wine: Windows leg required (PSBACKUP_WINE=required) but wine is not installed"
  wine_status=1
else
  echo "wine: Windows leg not run (wine is not installed, or PSBACKUP_WINE=off)"
fi
set -e

# dotnet test prints one summary per test assembly: "Passed!  - Failed: 0, Passed: 42, Skipped: 0, ..."
summary=$(grep -Eo 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" || true)
if [ -z "$summary" ]; then
  echo "tests: no xunit summary found (build or test host failure)" >&2
  exit 1
fi
xfailed=$(echo "$summary" | awk -F'[:,]' '{s+=$2} END {print s}')
xpassed=$(echo "$summary" | awk -F'[:,]' '{s+=$4} END {print s}')
xskipped=$(echo "$summary" | awk -F'[:,]' '{s+=$6} END {print s}')
pline=$(grep -E '^pester: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -1 || true)
if [ -z "$pline" ]; then
  echo "tests: no Pester summary found (Pester failed to start)" >&2
  pline="pester: 0 passed, 1 failed, 0 skipped"
fi
ppassed=$(echo "$pline" | awk '{print $2}')
pfailed=$(echo "$pline" | awk '{print $4}')
pskipped=$(echo "$pline" | awk '{print $6}')
wline=$(grep -E '^wine: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -1 || true)
wpassed=0 wfailed=0 wskipped=0
if [ -n "$wline" ]; then
  wpassed=$(echo "$wline" | awk '{print $2}')
  wfailed=$(echo "$wline" | awk '{print $4}')
  wskipped=$(echo "$wline" | awk '{print $6}')
elif [ "$wine_status" -ne 0 ]; then
  wfailed=1
fi
echo "tests: $((xpassed + ppassed + wpassed)) passed, $((xfailed + pfailed + wfailed)) failed, $((xskipped + pskipped + wskipped)) skipped (xunit ${xpassed}/${xfailed}/${xskipped}, pester ${ppassed}/${pfailed}/${pskipped}, wine ${wpassed}/${wfailed}/${wskipped})"
if [ "$xunit_status" -ne 0 ] || [ "$pester_status" -ne 0 ] || [ "$wine_status" -ne 0 ] || [ "$xfailed" -ne 0 ] || [ "$pfailed" -ne 0 ] || [ "$wfailed" -ne 0 ] || [ "$xpassed" -eq 0 ] || [ "$ppassed" -eq 0 ]; then
  exit 1
fi
