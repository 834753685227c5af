#!/usr/bin/env bash
# The main job on the embedded default: generate the bundled example database (fixed seed)
# under examples/out and back it up locally with psbackup, the seeds' way but verified.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-examples/out}"
build_log="$(mktemp)"
if ! dotnet build PSBackup.sln -c Release -nologo -v quiet >"$build_log" 2>&1; then
  cat "$build_log" >&2; rm -f "$build_log"; exit 1
fi
rm -f "$build_log"
psbackup() { dotnet src/PSBackup.Cli/bin/Release/net10.0/psbackup.dll "$@"; }

rm -rf "$out"
dotnet examples/PSBackup.Example/bin/Release/net10.0/psbackup-example.dll generate --out "$out"
db="$out/shard-db"
data="$out/unison"

echo; echo "== psbackup object backup (per-object backup, seed 000)"
psbackup object backup --db-root "$db" --dir acme --object customers

echo; echo "== psbackup wal list (namespace users)"
psbackup wal list --data-dir "$data" --namespace users

echo; echo "== psbackup wal ship (sealed segments to backups/users/wal/archive)"
psbackup wal ship --data-dir "$data" --namespace users --backup-dir wal/archive --json

echo; echo "== psbackup wal ship again: idempotent, nothing new is copied"
psbackup wal ship --data-dir "$data" --namespace users --backup-dir wal/archive

echo; echo "== psbackup snapshot create (online SQLite backup of the B-tree store)"
psbackup snapshot create --data-dir "$data" --namespace users --path snapshots/users-example.db --json

echo; echo "== psbackup sweep --what-if (the startup sweep: lists stale .new/.old/.tmp)"
psbackup sweep --root "$db" --what-if

echo; echo "Done: backups are under $db/acme and $data/backups/users"
