#!/usr/bin/env bash
# The main job on the embedded default: generate the bundled example database (fixed seed)
# under examples/out, back it up into a local repository (deduplicated, compressed, verified),
# and run the seeds' local backup jobs beside it.
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
repo="$out/repository"

echo; echo "== psbackup repo init (a local repository; unencrypted only when asked for)"
psbackup repo init --repository "$repo" --unencrypted

echo; echo "== psbackup object backup --repository (every object of the object store, one call)"
psbackup object backup --db-root "$db" --dir '*' --object '*' --repository "$repo"

echo; echo "== psbackup snapshot create --repository (online SQLite backup, WAL position recorded)"
for ns in users events; do
  psbackup snapshot create --data-dir "$data" --namespace "$ns" --repository "$repo"
done

echo; echo "== psbackup wal ship --repository (sealed segments; no state file to keep)"
for ns in users events; do
  psbackup wal ship --data-dir "$data" --namespace "$ns" --repository "$repo"
done

echo; echo "== psbackup wal ship again: the repository already holds every sealed segment"
psbackup wal ship --data-dir "$data" --namespace users --repository "$repo"

echo; echo "== psbackup list (what the repository holds)"
psbackup list --repository "$repo" --kind store-snapshot
psbackup list --repository "$repo" --kind object

echo; echo "== psbackup check --read-data (every stored byte verified)"
psbackup check --repository "$repo" --read-data

echo; echo "== the seeds' local jobs: object backup beside the object, WAL ship and snapshot to backups/<ns>"
psbackup object backup --db-root "$db" --dir acme --object customers
psbackup wal ship --data-dir "$data" --namespace users --backup-dir wal/archive
psbackup snapshot create --data-dir "$data" --namespace users --path snapshots/users-example.db

echo; echo "Done: repository in $repo; local backups under $db/acme and $data/backups/users"
