#!/usr/bin/env bash
# publish-cli.sh OUT: publishes `psbackup` into OUT the way docs/performance.md tells operators to
# install it on Linux, and prints the executable's path. Native AOT (no JIT, no runtime start-up:
# a no-change backup ~0.5 s of CPU less, a quarter less peak memory; docs/design.md, Performance,
# "Native AOT CLI"); where that cannot be built (no C toolchain, an architecture without an
# ILCompiler package) it says so on stderr and publishes ReadyToRun, framework-dependent, instead.
# --ready-to-run: that second form only; --aot-only: Native AOT or fail (CI, where the leg that
# tests the published binary must test the AOT one: .ci/run sets PSBACKUP_AOT=required). Used by scripts/test.sh (the CLI tests against the
# published binary) and bench/run.sh (the binary it times).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash scripts/publish-cli.sh OUT [--ready-to-run]}
mode=${2:-aot}
case "$(uname -m)" in x86_64) rid=linux-x64 ;; aarch64) rid=linux-arm64 ;; *) rid="" ;; esac
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ -n "$rid" ] && [ "$mode" != "--ready-to-run" ]; then
  if dotnet publish src/PSBackup.Cli -c Release -r "$rid" -p:PublishAot=true -o "$out" -nologo -v quiet >"$log" 2>&1; then
    echo "$out/psbackup"; exit 0
  fi
  if [ "$mode" = "--aot-only" ]; then
    echo "publish-cli: Native AOT publish failed:" >&2; tail -20 "$log" >&2; exit 1
  fi
  echo "publish-cli: Native AOT publish failed (last lines below); publishing ReadyToRun instead" >&2
  tail -5 "$log" >&2
elif [ "$mode" = "--aot-only" ]; then
  echo "publish-cli: no Native AOT for $(uname -m)" >&2; exit 1
fi
if [ -n "$rid" ] && dotnet publish src/PSBackup.Cli -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true \
     -o "$out" -nologo -v quiet >"$log" 2>&1; then
  echo "$out/psbackup"; exit 0
fi
cat "$log" >&2
exit 1
