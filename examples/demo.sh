#!/usr/bin/env bash
# The main job on the embedded default: generate the bundled example database (fixed seed)
# under examples/out, back it up into a local repository (deduplicated, compressed, verified),
# and run the seeds' local backup jobs beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-examples/out}"

# The example's namespaces are UnisonDB data directories whose store is LMDB 0.9: the generator
# writes it and `snapshot create` copies it live through the system's LMDB 0.9 library.
if ! { ldconfig -p 2>/dev/null | grep -q 'liblmdb\.so\.0'; }; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "== installing liblmdb0 (LMDB 0.9, the library UnisonDB's store format needs)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq liblmdb0 >/dev/null
  else
    echo "demo.sh: the LMDB 0.9 library is missing and there is no apt-get here. Install LMDB 0.9" >&2
    echo "  (Debian/Ubuntu: liblmdb0; Fedora: lmdb-libs; macOS: brew install lmdb) or set" >&2
    echo "  PSBACKUP_LMDB_LIBRARY to its path, then run demo.sh again." >&2
    exit 1
  fi
fi
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

echo; echo "== psbackup snapshot create --repository (live LMDB copy of unison.db, its WAL checkpoint recorded)"
for ns in users events; do
  psbackup snapshot create --data-dir "$data" --namespace "$ns" --repository "$repo"
done

echo; echo "== psbackup wal ship --repository (sealed segments and the active one's valid prefix; no state file to keep)"
for ns in users events; do
  psbackup wal ship --data-dir "$data" --namespace "$ns" --repository "$repo"
done

echo; echo "== psbackup wal ship again: the repository already holds every segment (nothing new was written)"
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

echo; echo "== psbackup pitr --repository (users to the last shipped record, laid out as UnisonDB starts from it)"
psbackup pitr --repository "$repo" --namespace users --target-log-index 999999999 --target-data-dir "$out/restored"

echo; echo "Done: repository in $repo; local backups under $db/acme and $data/backups/users"
