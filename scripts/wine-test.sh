#!/usr/bin/env bash
# The Windows leg (issue 13): the CLI and chosen xunit test classes, published for win-x64
# (self-contained), run under Wine from Debian. What Wine does and does not reproduce of Windows:
# docs/platforms.md and /work/shared/windows/WINE.md.
#
#   1. the CLI over Windows paths (C:\..., \\?\C:\..., forward slashes, mixed-case names) with a
#      key-file repository (PBKDF2 fails under Wine): repo init, object backup (wildcards,
#      case-insensitive), list, check --read-data, object restore (repository and local), wal ship
#      (local, backslash --backup-dir, and into the repository), snapshot create (backslash --path),
#      pitr to the end and to a log index, judged by UnisonDB's own walfs code (the Linux oracle
#      binary), test-restore with a cmd.exe validation command, refused Windows names;
#   2. the module in PowerShell for Windows: pwsh.exe 7.6.10 (from the PowerShell tool package) on
#      the .NET and Windows Desktop runtimes laid out under C:\dotnet, running the Pester file
#      tests/windows/WindowsModule.Tests.ps1 against out/PSBackup; each test counts in the totals;
#   3. xunit classes, one per process (Wine's whole-suite runs crash), through the test assembly's
#      own in-process runner (tests/PSBackup.Engine.Tests/Support/InProcessRunner.cs).
# Every Wine run is under a timeout and retried once when Wine itself crashed or hung.
# Prints "wine: N passed, N failed, N skipped" and the leg's duration; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
configuration="${CONFIGURATION:-Release}"
leg_start=$(date +%s)
passed=0
failed=0
skipped=0

finish() {
  echo "wine: leg took $(( $(date +%s) - leg_start )) s"
  echo "wine: $passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}

if ! command -v wine >/dev/null 2>&1; then
  echo "wine: not installed (.ci/run installs Debian's wine, wine64); the Windows leg cannot run"
  failed=1
  finish
fi

export WINEPREFIX="${PSBACKUP_WINEPREFIX:-$root/.tools/wine-prefix}"
export WINEDEBUG=-all
# WINE.md: every .NET process needs W^X off; these two make Wine's thread suspension crash less.
export DOTNET_EnableWriteXorExecute=0 DOTNET_gcConcurrent=0 DOTNET_ThreadPool_ThreadTimeoutMs=-1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# mscoree must stay enabled at run time (Wine's mscoree loads IL-only assemblies); disabling it
# (with mshtml) is only for wineboot, to skip the Mono/Gecko installers.
unset WINEDLLOVERRIDES
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  mkdir -p "$WINEPREFIX"
  WINEDLLOVERRIDES="mscoree,mshtml=" wineboot -i >/dev/null 2>&1
  wine winecfg -v win10 >/dev/null 2>&1
  wineserver -w
fi
drive_c="$WINEPREFIX/drive_c"

out="$root/out/win-x64"
echo "wine: publishing the CLI and the test assembly for win-x64"
publish() {
  # PSBackupModuleDir= keeps the module assembly step (a Linux build's job) out of these builds.
  # UseAppHost: the test project gets an .exe too (test projects do not by default).
  dotnet publish "$1" -c "$configuration" -r win-x64 --self-contained true -o "$2" -nologo -v quiet -p:PSBackupModuleDir= -p:UseAppHost=true >"$2.log" 2>&1 \
    || { cat "$2.log"; echo "wine: publishing $1 failed"; failed=$((failed + 1)); finish; }
}
mkdir -p "$out"
publish src/PSBackup.Cli/PSBackup.Cli.csproj "$out/cli"
publish tests/PSBackup.Engine.Tests/PSBackup.Engine.Tests.csproj "$out/tests"
# The executables are copied into the prefix: C:\ paths throughout, as on a real host.
rm -rf "$drive_c/psb-cli" "$drive_c/psb-tests"
cp -r "$out/cli" "$drive_c/psb-cli"
cp -r "$out/tests" "$drive_c/psb-tests"

# One Wine run under a timeout; retried once when Wine hung (124) or crashed (its own fatal
# errors), never when the program itself failed, and never when it exited 0: a crash message
# printed after the program finished its work (Wine's "SuspendThread failed" under load) must not
# run a command that is not idempotent (a restore into a now non-empty folder) a second time;
# the checks after each command judge what it did.
wine_run() {
  local limit=$1 attempt output code
  shift
  for attempt in 1 2; do
    output=$(timeout "$limit" wine "$@" 2>&1)
    code=$?
    if [ "$code" -eq 0 ] || { [ "$code" -ne 124 ] && ! grep -qE 'SuspendThread failed|Internal CLR error|wine: Unhandled (page fault|exception 0xc)' <<<"$output"; }; then
      break
    fi
    echo "  (wine crashed or hung, exit $code; retrying once)" >&2
  done
  printf '%s\n' "$output"
  return "$code"
}

psbackup() { wine_run 300 'C:\psb-cli\psbackup.exe' "$@"; }

pass() { passed=$((passed + 1)); echo "[PASS] $1"; }
fail() { failed=$((failed + 1)); echo "[FAIL] $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -20 | sed 's/^/    /'; }

# check NAME EXPECTED_EXIT COMMAND...: runs COMMAND, passes when it exits EXPECTED_EXIT.
last=""
check() {
  local name=$1 expected=$2 code
  shift 2
  last=$("$@" 2>&1)
  code=$?
  if [ "$code" -eq "$expected" ]; then pass "$name"; return 0; fi
  fail "$name (exit $code, expected $expected)" "$last"
  return 1
}

oracle="${PSBACKUP_UNISONDB_BIN:-}"
for d in "$oracle" "$root/../shared/unisondb/bin" "$root/../../shared/unisondb/bin"; do
  if [ -n "$d" ] && [ -x "$d/unisondb-walfs" ]; then oracle="$d/unisondb-walfs"; break; fi
done

# ---- 1. the CLI over Windows paths ---------------------------------------------------------------
echo "wine: CLI scenarios"
work="$drive_c/psbw"
rm -rf "$work"
mkdir -p "$work"
dotnet "$root/examples/PSBackup.Example/bin/$configuration/net10.0/psbackup-example.dll" generate --out "$work/example" --seed 13 --store sqlite >/dev/null \
  || { fail "generate the example database"; finish; }
mv "$work/example/shard-db/acme" "$work/example/shard-db/Acme"   # the on-disk spelling; the CLI is asked for ACME
cp -r "$work/example" "$work/example.pristine"                      # for the pwsh.exe part (2.)
head -c 64 /dev/urandom > "$work/repo.key"
export PSBACKUP_AUDIT_LOG='C:\psbw\audit.jsonl'
K=(--key-file 'C:\psbw\repo.key')
db='C:\psbw\example\shard-db'
data='C:\psbw\example\unison'
cp -r "$work/example/shard-db/Acme/orders" "$work/orders.original"

check "repo init on C:\\psbw\\repo" 0 psbackup repo init --repository 'C:\psbw\repo' "${K[@]}"
check "object backup --dir ACME --object '*' into \\\\?\\C:\\psbw\\repo" 0 psbackup object backup --db-root "$db" --dir ACME --object '*' --repository '\\?\C:\psbw\repo' "${K[@]}"
if check "list --json names the on-disk spelling" 0 psbackup list --repository 'C:/psbw/repo' --kind object --json "${K[@]}"; then
  if grep -q '"Acme"' <<<"$last" && ! grep -q '"ACME"' <<<"$last"; then
    pass "one history per object whatever the case typed"
  else
    fail "one history per object whatever the case typed" "$last"
  fi
fi
check "a second backup typed acme reuses the first (same object)" 0 psbackup object backup --db-root "$db" --dir acme --object orders --repository 'C:\psbw\repo' "${K[@]}"
check "check --read-data (managed zstd: no libzstd.dll)" 0 psbackup check --repository 'C:\psbw\repo' --read-data "${K[@]}"
rm -rf "$work/example/shard-db/Acme/orders"
check "object restore from the repository (object gone)" 0 psbackup object restore --db-root "$db" --dir acme --object orders --repository 'C:\psbw\repo' "${K[@]}"
if diff -r "$work/orders.original" "$work/example/shard-db/Acme/orders" >/dev/null 2>&1; then pass "restored object equals the original byte for byte"; else fail "restored object equals the original byte for byte" "$(diff -rq "$work/orders.original" "$work/example/shard-db/Acme/orders" 2>&1)"; fi
check "local object backup beside the object" 0 psbackup object backup --db-root "$db" --dir Acme --object customers
cp -r "$work/example/shard-db/Acme/customers" "$work/customers.original"
printf 'damaged' > "$work/example/shard-db/Acme/customers/fields.conf"
check "local object restore --from latest --force" 0 psbackup object restore --db-root "$db" --dir ACME --object CUSTOMERS --from latest --force
if diff -r "$work/customers.original" "$work/example/shard-db/Acme/customers" >/dev/null 2>&1; then pass "local restore equals the backup"; else fail "local restore equals the backup"; fi
if ls -d "$work/example/shard-db/Acme/customers.replaced-"* >/dev/null 2>&1; then pass "the replaced object is kept aside"; else fail "the replaced object is kept aside"; fi

check "wal ship --backup-dir 'wal\\archive' (backslashes)" 0 psbackup wal ship --data-dir "$data" --namespace users --backup-dir 'wal\archive'
if ls "$work/example/unison/backups/users/wal/archive/"*.wal >/dev/null 2>&1; then pass "segments archived under wal/archive"; else fail "segments archived under wal/archive"; fi
check "snapshot create --path 'snapshots\\users.db'" 0 psbackup snapshot create --data-dir "$data" --namespace users --path 'snapshots\users.db'
if [ -f "$work/example/unison/backups/users/snapshots/users.db" ]; then pass "snapshot written to snapshots/users.db"; else fail "snapshot written to snapshots/users.db"; fi
before=$(find "$work/example/unison/backups" -type f | sort | xargs sha256sum 2>/dev/null | sha256sum)
check "snapshot path 'snapshots\\con.db' is refused (a device name)" 2 psbackup snapshot create --data-dir "$data" --namespace users --path 'snapshots\con.db'
check "snapshot path 'snap:alt' is refused (an alternate data stream)" 2 psbackup snapshot create --data-dir "$data" --namespace users --path 'snap:alt'
after=$(find "$work/example/unison/backups" -type f | sort | xargs sha256sum 2>/dev/null | sha256sum)
if [ "$before" = "$after" ]; then pass "refused paths wrote nothing"; else fail "refused paths wrote nothing"; fi

check "snapshot create into the repository" 0 psbackup snapshot create --data-dir "$data" --namespace users --repository 'C:\psbw\repo' "${K[@]}"
check "wal ship into the repository" 0 psbackup wal ship --data-dir "$data" --namespace users --repository 'C:\psbw\repo' "${K[@]}"
check "pitr to the end (--target-time past the archive) into C:\\psbw\\restored" 0 psbackup pitr --namespace users --repository 'C:\psbw\repo' --target-time '2999-01-01T00:00:00Z' --target-data-dir 'C:\psbw\restored' "${K[@]}"

# PITR judged by UnisonDB's own code (its walfs reader, the Linux oracle binary, on copies of what
# the Windows CLI laid out). The example store is rolled back to log index 5000 first, so its
# snapshot needs the archived WAL after it: segments holding 5001.. are fetched and the last one cut.
cp -r "$work/example/unison" "$work/unison2"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE meta SET value = 5000 WHERE key = ?", ("applied_log_index",)); c.commit()' \
  "$work/unison2/users/db/store.sqlite"
rm -rf "$work/unison2/backups"
udata='C:\psbw\unison2'
check "repo init for the rolled-back namespace" 0 psbackup repo init --repository 'C:\psbw\urepo' "${K[@]}"
check "snapshot create (applied log index 5000)" 0 psbackup snapshot create --data-dir "$udata" --namespace users --repository 'C:\psbw\urepo' "${K[@]}"
check "wal ship of the sealed segments" 0 psbackup wal ship --data-dir "$udata" --namespace users --repository 'C:\psbw\urepo' "${K[@]}"
sealed_last=$("$oracle" replay -dir "$work/example/unison/users/wal" -ext .wal -raw 2>/dev/null | awk '/sealed=true/ { split($5, a, "="); split($6, b, "="); last = a[2] + b[2] - 1 } END { print last }')
for target in 7000 "$sealed_last"; do
  check "pitr --target-log-index $target into C:\\psbw\\pitr-$target" 0 psbackup pitr --namespace users --repository 'C:\psbw\urepo' --target-log-index "$target" --target-data-dir "C:\\psbw\\pitr-$target" "${K[@]}"
  if [ -x "$oracle" ] && [ -n "$sealed_last" ]; then
    copy=$(mktemp -d)
    cp -r "$work/pitr-$target/users/wal" "$copy/"
    replay=$("$oracle" replay -dir "$copy/wal" -ext .wal -raw 2>&1)
    code=$?
    rm -rf "$copy"
    first=$(sed -n 's/^bounds: first=\([0-9]*\) last=[0-9]*$/\1/p' <<<"$replay")
    got=$(sed -n 's/^bounds: first=[0-9]* last=\([0-9]*\)$/\1/p' <<<"$replay")
    if [ "$code" -eq 0 ] && [ "$got" = "$target" ] && [ -n "$first" ] && [ "$first" -le 5001 ]; then
      pass "UnisonDB's walfs reads the restored WAL from $first (<= 5001) to exactly $target"
    else
      fail "UnisonDB's walfs reads the restored WAL from <= 5001 to exactly $target (exit $code, $first..$got)" "$replay"
    fi
  else
    skipped=$((skipped + 1))
    echo "[SKIP] the UnisonDB oracle (shared/unisondb/bin/unisondb-walfs) is missing"
  fi
done
mkdir -p "$work/scratch"
check "test-restore with a quoted cmd.exe validation command" 0 psbackup test-restore --namespace users --repository 'C:\psbw\repo' --scratch-path 'C:\psbw\scratch' \
  --validate-command 'if exist "%PSBACKUP_RESTORED_PATH%\wal" (exit 0) else (exit 9)' "${K[@]}"
check "a failing cmd.exe validation fails the drill" 1 psbackup test-restore --namespace users --repository 'C:\psbw\repo' --scratch-path 'C:\psbw\scratch' \
  --validate-command 'if exist "%PSBACKUP_RESTORED_PATH%\no such folder" (exit 0) else (exit 9)' "${K[@]}"
if python3 -c '
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) >= 12, len(lines)
for l in lines: json.loads(l)
' "$work/audit.jsonl" 2>/dev/null; then pass "every audit line is whole JSON"; else fail "every audit line is whole JSON"; fi

# ---- 2. the module in PowerShell for Windows (pwsh.exe) ------------------------------------------
# PowerShell 7.6.10's tool package carries the Windows build (tools/net10.0/any/win/pwsh.exe); it
# runs on the shared Microsoft.NETCore.App and Microsoft.WindowsDesktop.App frameworks, laid out
# from their win-x64 runtime packs as C:\dotnet\{host\fxr,shared\...} (DOTNET_ROOT), both cached in
# the prefix. Pester (pure PowerShell) runs tests/windows/*.Tests.ps1 through scripts/pester.ps1;
# each of its tests counts in the leg's totals. pwsh.exe needs a terminal under Wine (without one
# it exits 0 having run nothing): script(1) gives it one, and the summary comes back in a file.
echo "wine: the module in PowerShell for Windows"
pwsh_start=$(date +%s)
pwsh_part() {
  local tools pester_psd1 pwsh_win runtime_version packages pack restore stamp log summary attempt pid deadline
  tools=$(bash scripts/install-pwsh.sh 2>&1) || { fail "install pwsh and Pester (scripts/install-pwsh.sh)" "$tools"; return; }
  pester_psd1=$(sed -n 's/^pester=//p' <<<"$tools")
  pwsh_win="$root/.tools/pwsh/.store/powershell/7.6.10/powershell/7.6.10/tools/net10.0/any/win"
  if [ ! -f "$pwsh_win/pwsh.exe" ]; then fail "pwsh.exe in the PowerShell tool package" "not at $pwsh_win"; return; fi
  # The runtime the SDK's self-contained publish used above (its bundled .NET 10 patch).
  runtime_version=$(dotnet --list-runtimes | sed -n 's/^Microsoft\.NETCore\.App \(10\.[0-9.]*\) .*/\1/p' | sort -V | tail -1)
  stamp="$drive_c/dotnet/psbackup-$runtime_version.done"
  if [ ! -f "$stamp" ]; then
    local restored
    restored=$(bash scripts/nuget-download.sh "Microsoft.NETCore.App.Runtime.win-x64=$runtime_version" \
      "Microsoft.WindowsDesktop.App.Runtime.win-x64=$runtime_version" 2>&1) \
      || { fail "restore the win-x64 runtime packs $runtime_version" "$restored"; return; }
    packages=$(tail -1 <<<"$restored")
    rm -rf "$drive_c/dotnet"
    mkdir -p "$drive_c/dotnet/host/fxr/$runtime_version"
    cp "$packages/microsoft.netcore.app.runtime.win-x64/$runtime_version/runtimes/win-x64/native/hostfxr.dll" "$drive_c/dotnet/host/fxr/$runtime_version/"
    for pack in Microsoft.NETCore.App Microsoft.WindowsDesktop.App; do
      local lower=${pack,,}
      mkdir -p "$drive_c/dotnet/shared/$pack/$runtime_version"
      cp -r "$packages/$lower.runtime.win-x64/$runtime_version/runtimes/win-x64/lib/net10.0/." \
            "$packages/$lower.runtime.win-x64/$runtime_version/runtimes/win-x64/native/." "$drive_c/dotnet/shared/$pack/$runtime_version/"
    done
    touch "$stamp"
  fi
  if [ ! -f "$drive_c/pwsh/psbackup-7.6.10.done" ]; then
    rm -rf "$drive_c/pwsh"
    cp -r "$pwsh_win" "$drive_c/pwsh"
    touch "$drive_c/pwsh/psbackup-7.6.10.done"
  fi
  # Pester, the module as the build assembled it, the runner and the test files: fresh each run.
  rm -rf "$drive_c/psb-pwsh"
  mkdir -p "$drive_c/psb-pwsh/Pester" "$drive_c/psb-pwsh/tests"
  cp -r "$(dirname "$pester_psd1")/." "$drive_c/psb-pwsh/Pester/"
  cp -r "$root/out/PSBackup" "$drive_c/psb-pwsh/PSBackup"
  cp scripts/pester.ps1 "$drive_c/psb-pwsh/pester.ps1"
  cp tests/windows/*.Tests.ps1 "$drive_c/psb-pwsh/tests/"
  local files
  files=$(cd tests/windows && ls *.Tests.ps1 | sed 's/^/C:\\psb-pwsh\\tests\\/' | paste -sd, -)
  export DOTNET_ROOT='C:\dotnet' PSBACKUP_WINTEST_ROOT='C:\psbwp' PSBACKUP_WINTEST_MODULE='C:\psb-pwsh\PSBackup\PSBackup.psd1'
  export PSBACKUP_STATE_PATH='C:\psb-pwsh\state'
  unset PSBACKUP_AUDIT_LOG
  log=$(mktemp)
  for attempt in 1 2; do
    # The inputs the tests cannot make themselves (pwsh.exe cannot start dotnet): the example
    # database with its Acme folder, and UnisonDB's bbolt store fixture with its real WAL.
    rm -rf "$drive_c/psbwp" "$drive_c/psb-pwsh/summary.txt"
    mkdir -p "$drive_c/psbwp"
    cp -r "$work/example.pristine" "$drive_c/psbwp/example"
    cp -r tests/fixtures/unisondb/v1-store-bolt "$drive_c/psbwp/unison"
    script -qec "wine 'C:\\pwsh\\pwsh.exe' -NoProfile -NonInteractive -File 'C:\\psb-pwsh\\pester.ps1' -PesterPath 'C:\\psb-pwsh\\Pester\\Pester.psd1' -Path '$files' -NoTestResult -SummaryPath 'C:\\psb-pwsh\\summary.txt'" /dev/null >"$log" 2>&1 </dev/null &
    pid=$!
    deadline=$((SECONDS + 420))
    # The summary file decides; a pwsh.exe that wrote it but does not exit is ended.
    while kill -0 "$pid" 2>/dev/null; do
      if [ -s "$drive_c/psb-pwsh/summary.txt" ]; then sleep 2; break; fi
      if [ "$SECONDS" -ge "$deadline" ]; then break; fi
      sleep 1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ -s "$drive_c/psb-pwsh/summary.txt" ]; then break; fi
    echo "  (pwsh.exe: no result, wine crashed or hung; retrying once)" >&2
    sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b\][^\a]*\a//g; s/\r//g' "$log" | tail -20 >&2
  done
  # Pester's own lines, without the terminal's escape codes.
  sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b\][^\a]*\a//g; s/\r//g' "$log" | grep -vE '^\s*$' | sed 's/^/  pwsh.exe: /'
  rm -f "$log"
  summary=$(tr -d '\r' <"$drive_c/psb-pwsh/summary.txt" 2>/dev/null | grep -E '^pester: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' | tail -1)
  if [ -z "$summary" ]; then
    fail "Pester in pwsh.exe (tests/windows): no result"
    return
  fi
  read -r p f s < <(sed -E 's/^pester: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/' <<<"$summary")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "[$([ "$f" -eq 0 ] && echo PASS || echo FAIL)] Pester in pwsh.exe (tests/windows): $summary"
  # The PITR the module made on Windows, judged by UnisonDB's own reader (the Linux oracle) on a
  # copy: the v1 bbolt fixture's checkpoint is 2:222128 (log index 420).
  if [ -f "$oracle" ] && [ -d "$drive_c/psbwp/pitr-500/users/wal" ]; then
    local copy replay
    copy=$(mktemp -d)
    cp -r "$drive_c/psbwp/pitr-500/users/wal" "$copy/"
    replay=$("$oracle" replay -dir "$copy/wal" -seg-size 262144 -from 2:222128 2>&1)
    if grep -q 'replayed 80 records, lsn 421\.\.500,' <<<"$(tail -1 <<<"$replay")"; then
      pass "UnisonDB's walfs replays the WAL Restore-PointInTime wrote on Windows: exactly 421..500"
    else
      fail "UnisonDB's walfs replays the WAL Restore-PointInTime wrote on Windows: exactly 421..500" "$replay"
    fi
    # The restored WAL stays writable: UnisonDB appends the next record after the cut.
    replay=$("$oracle" append -dir "$copy/wal" -seg-size 262144 -lsn 501 2>&1)
    if [ $? -eq 0 ]; then pass "UnisonDB appends log index 501 to that WAL"; else fail "UnisonDB appends log index 501 to that WAL" "$replay"; fi
    rm -rf "$copy"
  elif [ ! -f "$oracle" ]; then
    skipped=$((skipped + 1)); echo "[SKIP] the UnisonDB oracle (shared/unisondb/bin/unisondb-walfs) is missing"
  else
    fail "Restore-PointInTime in pwsh.exe left no C:\\psbwp\\pitr-500\\users\\wal"
  fi
}
pwsh_part
unset DOTNET_ROOT PSBACKUP_WINTEST_ROOT PSBACKUP_WINTEST_MODULE PSBACKUP_STATE_PATH
echo "wine: the pwsh.exe part took $(( $(date +%s) - pwsh_start )) s"

# ---- 3. xunit classes, one per process -----------------------------------------------------------
echo "wine: xunit classes"
# Classes that create symbolic links are left out (File.CreateSymbolicLink fails under Wine, see
# docs/platforms.md): SafePathTests, LocalBackendTests, ObjectRestoreTests.
classes=(
  PSBackup.Engine.Tests.Core.WindowsFileSemanticsTests
  PSBackup.Engine.Tests.Core.WindowsRulesTests
  PSBackup.Engine.Tests.Core.DurableTests
  PSBackup.Engine.Tests.Health.AuditLogTests
  PSBackup.Engine.Tests.Storage.LocalBackendContractTests
  PSBackup.Engine.Tests.Repository.RepositoryRoundTripTests
  PSBackup.Engine.Tests.Restore.ParallelRestoreTests
)
# A test process under Wine sometimes never exits after its last test (a thread left hanging
# in Wine; the process shows as defunct): the class's closing line decides, and the process is
# ended once it has printed it. No closing line within the limit is a hang: retried once.
run_class() {
  local class=$1 log attempt pid deadline
  log=$(mktemp)
  for attempt in 1 2; do
    wine 'C:\psb-tests\PSBackup.Engine.Tests.exe' --class "$class" >"$log" 2>&1 &
    pid=$!
    deadline=$((SECONDS + 300))
    while kill -0 "$pid" 2>/dev/null; do
      if grep -qE '^wine-xunit: ' "$log"; then
        sleep 2
        kill -9 "$pid" 2>/dev/null
        break
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        kill -9 "$pid" 2>/dev/null
        break
      fi
      sleep 1
    done
    wait "$pid" 2>/dev/null
    if grep -qE '^wine-xunit: ' "$log"; then
      break
    fi
    echo "  ($class: no result, wine crashed or hung; retrying once)" >&2
  done
  cat "$log"
  rm -f "$log"
}
for class in "${classes[@]}"; do
  result=$(run_class "$class")
  summary=$(grep -E '^wine-xunit: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' <<<"$result" | tail -1)
  if [ -n "$summary" ] && grep -qE ' 0 failed' <<<"$summary" && ! grep -qE '^wine-xunit: 0 passed' <<<"$summary"; then
    pass "$class ($summary)"
  else
    fail "$class (${summary:-no result})" "$(grep -E '^\[FAIL\]|^   at ' <<<"$result" | head -30)"
  fi
done

finish
