#!/usr/bin/env bash
# The side-by-side benchmark (SPEC §5, issue 6): PSBackup against tar | zstd -3 -T0, restic and
# borg, in one run, on the same data, on the same disk. One command on a fresh machine:
#
#   bash bench/run.sh [--real | --all] [--real-source DIR] [--runs 3] [--size-mib 1024] [--small-mib 256] [--seed 6] [--quick] [--codecs both|native|managed]
# --real: the real tree only (issue 17): a copy of files Debian installed on this machine
# (--real-source, default /usr/lib/x86_64-linux-gnu: ~1.7 GB, ~5,400 shared libraries, locale and
# data files from a few hundred packages), backed up as one object (db root/debian/<name>): full,
# no change, 5 % of files changed, no change right after a bulk copy (every file inside the racy
# window), verify all data, full restore. --all: the real tree and the synthetic set in one run.
# Default: the synthetic set (a generated object store, WAL segments, PITR, one-segment ship).
# --rpo: only the recovery-point scenario (issue 16): a writer appends 1,000 records/s (100 B..8 KiB)
# to a walfs WAL while Invoke-WalShip -Continuous (--interval 1s) ships it in the same process, for
# --rpo-seconds (600) into a local repository, then the same against s3rver; prints lag p50/p99/max,
# repository growth / bytes written, CPU under load and idle, RSS; raw rows in bench/out/rpo.tsv.
# --codecs: which zstd codec the PSBackup rows use: libzstd ("psbackup"), the managed ZstdSharp.Port
# that Windows and Azure Automation run ("psbackup (managed zstd)", PSBACKUP_ZSTD=managed), or both
# (the default).
#
# Installs the peers from Debian when missing, builds Release, generates the dataset under
# bench/out/ (reused when seed and size match), times every scenario for every tool with
# /usr/bin/time (wall, peak RSS), and prints bench/out/results.md (also written to disk).
# Raw measurements: bench/out/raw.tsv. Nothing here needs root except installing packages.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

runs=3 size=1024 small=256 seed=6 segments=64 cases=10 codecs=both
synthetic=1 real=0 real_source=/usr/lib/x86_64-linux-gnu rpo=0 rpo_seconds=600
while [ $# -gt 0 ]; do
  case "$1" in
    --real) synthetic=0 real=1; shift ;;
    --all) synthetic=1 real=1; shift ;;
    --real-source) real_source=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --size-mib) size=$2; shift 2 ;;
    --small-mib) small=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --quick) runs=1 size=128 small=32 segments=8 cases=4; shift ;;
    --codecs) codecs=$2; shift 2 ;;
    --rpo) rpo=1; shift ;;
    --rpo-seconds) rpo=1 rpo_seconds=$2; shift 2 ;;
    *) echo "usage: bash bench/run.sh [--real | --all | --rpo [--rpo-seconds 600]] [--real-source DIR] [--runs N] [--size-mib M] [--small-mib M] [--seed N] [--quick] [--codecs both|native|managed]" >&2; exit 2 ;;
  esac
done
case "$codecs" in
  both) native=1 managed=1 ;;
  native) native=1 managed=0 ;;
  managed) native=0 managed=1 ;;
  *) echo "bench: --codecs is both, native or managed, not '$codecs'" >&2; exit 2 ;;
esac

out=$root/bench/out
work=$out/work
raw=$out/raw.tsv
mkdir -p "$out"
log() { printf '\n== %s\n' "$*" >&2; }

# --- 1. Peers from Debian --------------------------------------------------------------------
missing=()
command -v zstd >/dev/null || missing+=(zstd)
command -v restic >/dev/null || missing+=(restic)
command -v borg >/dev/null || missing+=(borgbackup)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- 2. Build ----------------------------------------------------------------------------------
log "building Release"
build_log=$(mktemp)
if ! dotnet build PSBackup.sln -c Release -nologo -v quiet >"$build_log" 2>&1; then
  cat "$build_log" >&2; rm -f "$build_log"; exit 1
fi
# The CLI as it is installed (docs/performance.md): Native AOT on Linux (scripts/publish-cli.sh;
# ReadyToRun where AOT cannot be built), so a short run pays no JIT and no runtime start-up.
rm -rf "$out/cli"
if cli_built=$(bash scripts/publish-cli.sh "$out/cli" 2>"$build_log"); then
  cli=$cli_built
  [ -s "$build_log" ] && cat "$build_log" >&2
else
  cat "$build_log" >&2; echo "bench: no published CLI here; timing the plain build" >&2
  cli=$root/src/PSBackup.Cli/bin/Release/net10.0/psbackup
fi
rm -f "$build_log"
export cli
psbackup() { "$cli" "$@"; }
# The same CLI on the managed zstd codec (what runs where no libzstd loads).
psbackupm() { PSBACKUP_ZSTD=managed "$cli" "$@"; }
bench() { "$root/bench/PSBackup.Bench/bin/Release/net10.0/psbackup-bench" "$@"; }
export -f psbackup psbackupm
export root

# --- RPO scenario (issue 16): its own run, then exit --------------------------------------------
if [ "$rpo" -eq 1 ]; then
  # Encrypted, as deployed; no audit log lines from the benchmark.
  export PSBACKUP_PASSPHRASE=bench-passphrase PSBACKUP_AUDIT_LOG=off
  rpo_tsv=$out/rpo.tsv
  printf 'target\tinterval_s\tseconds\trecords\tbytes_written\trepo_growth\tgrowth_ratio\tlag_p50_s\tlag_p99_s\tlag_max_s\tunshipped\tload_cpu_pct\tidle_cpu_pct\trss_start_mib\trss_end_mib\trss_max_mib\n' >"$rpo_tsv"
  log "load before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  log "rpo: local repository, ${rpo_seconds} s"
  bench rpo --work "$out/rpo-local" --seconds "$rpo_seconds" --interval 1s --tsv "$rpo_tsv"
  log "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ ! -d tests/s3/node_modules ]; then npm ci --prefix tests/s3 --no-audit --no-fund >&2; fi
  s3dir=$out/rpo-s3rver
  rm -rf "$s3dir"; mkdir -p "$s3dir/data"
  NODE_OPTIONS=--openssl-legacy-provider node tests/s3/node_modules/s3rver/bin/s3rver.js -d "$s3dir/data" -a 127.0.0.1 -p 0 \
    --no-vhost-buckets --configure-bucket rpo >"$s3dir/log" 2>&1 &
  s3pid=$!
  trap 'kill $s3pid 2>/dev/null || true' EXIT
  endpoint=""
  for _ in $(seq 1 150); do
    endpoint=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$s3dir/log" | head -1 | sed 's/listening on /http:\/\//') || true
    [ -n "$endpoint" ] && break
    sleep 0.2
  done
  [ -n "$endpoint" ] || { echo "bench: s3rver did not start: $(cat "$s3dir/log")" >&2; exit 1; }
  log "rpo: s3rver at $endpoint, ${rpo_seconds} s"
  AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
    bench rpo --work "$out/rpo-s3" --seconds "$rpo_seconds" --interval 1s --s3 s3://rpo/repo --s3-endpoint "$endpoint" --tsv "$rpo_tsv"
  kill $s3pid 2>/dev/null || true
  log "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
  column -t -s $'\t' "$rpo_tsv"
  exit 0
fi

# Same secrets for every tool; no audit log lines from the benchmark.
export PSBACKUP_PASSPHRASE=bench-passphrase RESTIC_PASSWORD=bench-passphrase BORG_PASSPHRASE=bench-passphrase
export PSBACKUP_AUDIT_LOG=off RESTIC_CACHE_DIR=$out/cache/restic BORG_BASE_DIR=$out/cache/borg
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

# bytes PATH: the bytes of the files under PATH (a file: its size).
bytes() { find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'; }
# restored DIR BYTES: part of each timed restore, so an incomplete restore is a failure.
restored() { [ "$(bytes "$1")" = "$2" ] || { echo "restored $(bytes "$1") bytes into $1, expected $2" >&2; return 1; }; }
export -f bytes restored

# --- 3. Data -------------------------------------------------------------------------------------
# dataset SIZE [SEGMENTS] -> prints the dataset folder, generating it unless one with this
# seed/size/segment count exists.
dataset() {
  local segs=${2:-$segments}
  local dir=$out/dataset-$1mib-seed$seed-wal$segs
  if ! grep -qs "\"Version\":2,\"Seed\":$seed,\"SizeMiB\":$1,\"Segments\":$segs," "$dir/dataset.json"; then
    log "generating $1 MiB + $segs WAL segments (seed $seed) in $dir"
    rm -rf "$dir"
    bench generate --out "$dir" --size-mib "$1" --segments "$segs" --seed "$seed" >&2
  fi
  echo "$dir"
}
if [ "$synthetic" = 1 ]; then
  ds=$(dataset "$size")
  ds_small=$(dataset "$small" 2)        # only its object store is used (peak RSS as data grows)
  objects=("$ds"/db/*/*)
  wal_bytes=$(bytes "$ds/data/ledger/wal")
  last_log_index=$(sed 's/.*"LastLogIndex":\([0-9]*\).*/\1/' "$ds/dataset.json")
  mapfile -t wal_segments < <(ls "$ds/data/ledger/wal"/*.seg | sort)
fi
# The real tree: files nobody here wrote. An object may not hold symbolic links (PSBackup refuses
# them rather than follow or drop them silently), so the copy keeps the regular files and folders
# and leaves the links out (~600 small .so -> .so.N names); every tool backs up the same copy.
real_name=$(basename "$real_source")
real_copy() { # real_copy DEST: a fresh copy of the real tree at DEST/debian/<name>
  mkdir -p "$1/debian"
  cp -a "$real_source" "$1/debian/$real_name"
  find "$1/debian/$real_name" -type l -delete
}
if [ "$real" = 1 ] && [ ! -d "$real_source" ]; then
  echo "bench: --real-source '$real_source' is not a folder" >&2; exit 2
fi


# --- 4. Measuring --------------------------------------------------------------------------------
# measure SCENARIO TOOL RUN INPUT_BYTES STORED_PATH COMMAND: runs COMMAND (bash) under
# /usr/bin/time after a sync, appends one line to raw.tsv (wall, peak RSS, and the CPU seconds,
# user + sys of every process of the command: on a shared machine the steadier figure); STORED_PATH ("-" for none) is sized
# after the command. A failing command is recorded as FAIL with its output shown.
measure() {
  local scenario=$1 tool=$2 run=$3 input=$4 stored_path=$5 command=$6 wall rss cpu="" stored=""
  sync
  if /usr/bin/time -f '%e %M %U %S' -o "$out/time.txt" bash -c "set -euo pipefail; $command" >"$out/cmd.log" 2>&1; then
    local user sys
    read -r wall rss user sys < <(tail -n 1 "$out/time.txt")
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    [ "$stored_path" = - ] || stored=$(bytes "$stored_path")
  else
    wall=FAIL rss=0
    echo "FAILED: $scenario / $tool: $command" >&2; tail -n 5 "$out/cmd.log" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t%s\n' "$scenario" "$tool" "$run" "$wall" "$rss" "$input" "$stored" "$cpu" >>"$raw"
  printf '  %-12s %-24s %8s s %8s KiB %6s s CPU  (load %s)\n' "$scenario" "$tool" "$wall" "$rss" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" >&2
}

# One PSBackup CLI call for every object (--dir '*' --object '*'), as an operator's job runs it.
psb_backup_db='psbackup object backup --db-root "$W/db" --dir "*" --object "*" --repository "$W/psb" >/dev/null'
psb_restore_db='mkdir -p "$W/rp"; psbackup object restore --db-root "$W/rp" --dir "*" --object "*" --repository "$W/psb" >/dev/null'
tar_backup='tar -C "$W" -cf - db | zstd -3 -T0 -q -f -o "$W/tar/db.tar.zst"'
restic_backup='cd "$W" && restic -r "$W/restic" backup -q --tag db db'
borg_backup() { echo "cd \"\$W\" && borg create --compression zstd,3 \"\$W/borg::$1\" db"; }

# The same on a key-file repository (no PBKDF2 in each process), to show what the passphrase's
# key derivation costs the short runs.
psbk_backup_db='env -u PSBACKUP_PASSPHRASE "$cli" object backup --db-root "$W/db" --dir "*" --object "*" --repository "$W/psbk" --key-file "$W/psbk.key" >/dev/null'

# The managed-codec twin of the passphrase repository (its own repository, so dedup is alike).
psbm_backup_db='psbackupm object backup --db-root "$W/db" --dir "*" --object "*" --repository "$W/psbm" >/dev/null'
psbm_restore_db='mkdir -p "$W/rm"; psbackupm object restore --db-root "$W/rm" --dir "*" --object "*" --repository "$W/psbm" >/dev/null'

# backup_round SCENARIO RUN: one backup of the current db/ with every tool.
backup_round() {
  local db_bytes; db_bytes=$(bytes "$W/db")
  [ "$native" = 1 ] && measure "$1" psbackup "$2" "$db_bytes" "$W/psb" "$psb_backup_db"
  [ "$managed" = 1 ] && measure "$1" "psbackup (managed zstd)" "$2" "$db_bytes" "$W/psbm" "$psbm_backup_db"
  measure "$1" "psbackup (key file)" "$2" "$db_bytes" "$W/psbk" "$psbk_backup_db"
  measure "$1" "tar | zstd -3 -T0" "$2" "$db_bytes" "$W/tar/db.tar.zst" "$tar_backup"
  measure "$1" restic "$2" "$db_bytes" "$W/restic" "$restic_backup"
  measure "$1" borg "$2" "$db_bytes" "$W/borg" "$(borg_backup "$1")"
}

rm -f "$raw"
start=$(date +%s)
# Private copies of the object store (the incremental scenario changes them), made up front and
# aged past PSBackup's racy window: a file whose change time is under 35 s old is read twice to
# prove the copy (docs/design.md, "Object backups: what Stable and Recent mean"), and `cp -a`
# sets every change time to now. A live database's files are older than that; restic and borg
# have no such rule, so a fresh copy would charge PSBackup a second read nobody else pays.
rm -rf "$out/copies"; mkdir -p "$out/copies"
if [ "$synthetic" = 1 ]; then
  for run in $(seq 1 "$runs"); do cp -a "$ds/db" "$out/copies/db-$run"; done
  cp -a "$ds_small/db" "$out/copies/db-small"
fi
if [ "$real" = 1 ]; then
  log "copying $real_source ($runs × $(du -sh "$real_source" | cut -f1))"
  for run in $(seq 1 "$runs"); do real_copy "$out/copies/real-$run"; done
fi
copied=$(date +%s)
if [ $(( copied + 36 - $(date +%s) )) -gt 0 ]; then
  log "letting the copies age past the racy window"
  sleep $(( copied + 36 - $(date +%s) ))
fi
# real_round RUN: the real tree's scenarios with every tool, in $RW.
real_round() {
  local run=$1 tree_bytes
  export RW=$work/real
  rm -rf "$RW"; mkdir -p "$RW/tar"
  mv "$out/copies/real-$run" "$RW/tree"
  export real_name
  tree_bytes=$(bytes "$RW/tree")
  psbackup repo init --repository "$RW/psb" >/dev/null
  psbackupm repo init --repository "$RW/psbm" >/dev/null
  head -c 64 /dev/urandom >"$RW/psbk.key"
  env -u PSBACKUP_PASSPHRASE "$cli" repo init --repository "$RW/psbk" --key-file "$RW/psbk.key" >/dev/null
  restic -r "$RW/restic" init -q >/dev/null
  borg init --encryption repokey "$RW/borg" >/dev/null 2>&1
  local pb='object backup --db-root "$RW/tree" --dir debian --object "$real_name"'
  real_backups() { # real_backups SCENARIO: one backup of the tree with every tool
    tree_bytes=$(bytes "$RW/tree")
    [ "$native" = 1 ] && measure "$1" psbackup "$run" "$tree_bytes" "$RW/psb" "psbackup $pb --repository \"\$RW/psb\" >/dev/null"
    [ "$managed" = 1 ] && measure "$1" "psbackup (managed zstd)" "$run" "$tree_bytes" "$RW/psbm" "psbackupm $pb --repository \"\$RW/psbm\" >/dev/null"
    measure "$1" "psbackup (key file)" "$run" "$tree_bytes" "$RW/psbk" "env -u PSBACKUP_PASSPHRASE \"\$cli\" $pb --repository \"\$RW/psbk\" --key-file \"\$RW/psbk.key\" >/dev/null"
    [ "$1" = real-full ] && measure "$1" "tar | zstd -3 -T0" "$run" "$tree_bytes" "$RW/tar/tree.tar.zst" 'tar -C "$RW" -cf - tree | zstd -3 -T0 -q -f -o "$RW/tar/tree.tar.zst"'
    measure "$1" restic "$run" "$tree_bytes" "$RW/restic" 'cd "$RW" && restic -r "$RW/restic" backup -q tree'
    measure "$1" borg "$run" "$tree_bytes" "$RW/borg" "cd \"\$RW\" && borg create --compression zstd,3 \"\$RW/borg::$1\" tree"
  }
  log "real tree, run $run of $runs: $(find "$RW/tree" -type f | wc -l) files, $(( tree_bytes / 1048576 )) MiB"
  real_backups real-full
  real_backups real-nochange
  export tar_bytes; tar_bytes=$(bytes "$RW/tree")
  log "mutate: $(bench mutate-tree --root "$RW/tree" --percent 5 --seed "$run")"
  sleep 36 # the changes age past the racy window, as for the synthetic set
  real_backups real-incremental

  tree_bytes=$(bytes "$RW/tree"); export tree_bytes
  [ "$native" = 1 ] && measure real-verify psbackup "$run" "$tree_bytes" - 'psbackup check --repository "$RW/psb" --read-data >/dev/null'
  [ "$managed" = 1 ] && measure real-verify "psbackup (managed zstd)" "$run" "$tree_bytes" - 'psbackupm check --repository "$RW/psbm" --read-data >/dev/null'
  measure real-verify "tar | zstd -3 -T0" "$run" "$tree_bytes" - 'zstd -t -q "$RW/tar/tree.tar.zst"'
  measure real-verify restic "$run" "$tree_bytes" - 'restic -r "$RW/restic" check -q --read-data'
  measure real-verify borg "$run" "$tree_bytes" - 'borg check --verify-data "$RW/borg"'

  # Restore the latest backup (tar: the full backup's archive, which holds the tree as it was
  # before the 5 % change, so its restore is checked against that size).
  [ "$native" = 1 ] && measure real-restore psbackup "$run" "$tree_bytes" - 'mkdir -p "$RW/rp"; psbackup object restore --db-root "$RW/rp" --dir debian --object "$real_name" --repository "$RW/psb" >/dev/null; restored "$RW/rp" $tree_bytes'
  [ "$managed" = 1 ] && measure real-restore "psbackup (managed zstd)" "$run" "$tree_bytes" - 'mkdir -p "$RW/rm"; psbackupm object restore --db-root "$RW/rm" --dir debian --object "$real_name" --repository "$RW/psbm" >/dev/null; restored "$RW/rm" $tree_bytes'
  rm -rf "$RW/rp" "$RW/rm"
  mkdir -p "$RW/rt" "$RW/rb"
  measure real-restore "tar | zstd -3 -T0" "$run" "$tree_bytes" - 'zstd -d -q -c "$RW/tar/tree.tar.zst" | tar -C "$RW/rt" -xf -; restored "$RW/rt" $tar_bytes'
  rm -rf "$RW/rt"
  measure real-restore restic "$run" "$tree_bytes" - 'restic -r "$RW/restic" restore -q latest --target "$RW/rr"; restored "$RW/rr" $tree_bytes'
  rm -rf "$RW/rr"
  measure real-restore borg "$run" "$tree_bytes" - 'cd "$RW/rb" && borg extract "$RW/borg::real-incremental"; restored "$RW/rb" $tree_bytes'
  rm -rf "$RW/rb"

  # Right after a bulk copy: a fresh copy of the tree as it was before the change (every file
  # inside the racy window) is backed up, and backed up again at once with nothing changed; each
  # tool gets its own fresh copy, so each starts its pair equally soon after the copy. The second
  # run is the row ("real-fresh", the first, is shown for what it is: a backup of new inodes whose
  # content the repository already holds).
  local tool
  for tool in psbackup restic borg; do
    rm -rf "$RW/tree"; real_copy "$RW/tree"
    case $tool in
      psbackup)
        measure real-fresh psbackup "$run" "$tree_bytes" - "psbackup $pb --repository \"\$RW/psb\" >/dev/null"
        measure real-racy psbackup "$run" "$tree_bytes" - "psbackup $pb --repository \"\$RW/psb\" >/dev/null" ;;
      restic)
        measure real-fresh restic "$run" "$tree_bytes" - 'cd "$RW" && restic -r "$RW/restic" backup -q tree'
        measure real-racy restic "$run" "$tree_bytes" - 'cd "$RW" && restic -r "$RW/restic" backup -q tree' ;;
      borg)
        measure real-fresh borg "$run" "$tree_bytes" - 'cd "$RW" && borg create --compression zstd,3 "$RW/borg::fresh" tree'
        measure real-racy borg "$run" "$tree_bytes" - 'cd "$RW" && borg create --compression zstd,3 "$RW/borg::racy" tree' ;;
    esac
  done
  rm -rf "$RW"
}

if [ "$real" = 1 ]; then
  for run in $(seq 1 "$runs"); do real_round "$run"; done
fi

if [ "$synthetic" = 1 ]; then
for run in $(seq 1 "$runs"); do
  log "run $run of $runs"
  rm -rf "$work"; mkdir -p "$work/tar"
  export W=$work
  mv "$out/copies/db-$run" "$W/db"
  cp -al "$ds/data" "$W/data"          # hard links: nothing writes into the WAL
  psbackup repo init --repository "$W/psb" >/dev/null
  psbackupm repo init --repository "$W/psbm" >/dev/null
  head -c 64 /dev/urandom >"$W/psbk.key"
  env -u PSBACKUP_PASSPHRASE "$cli" repo init --repository "$W/psbk" --key-file "$W/psbk.key" >/dev/null
  restic -r "$W/restic" init -q >/dev/null
  borg init --encryption repokey "$W/borg" >/dev/null 2>&1

  backup_round full "$run"
  log "mutate: $(bench mutate --out "$W" --percent 5 --seed "$run")"
  # The changed files age past the racy window too (see the copies above): 5 % changed since the
  # last backup, not 5 % being written while it runs.
  sleep 36
  backup_round incremental "$run"
  backup_round nochange "$run"

  export db_bytes; db_bytes=$(bytes "$W/db")
  [ "$native" = 1 ] && measure restore psbackup "$run" "$db_bytes" - "$psb_restore_db"'; restored "$W/rp" $db_bytes'
  [ "$managed" = 1 ] && measure restore "psbackup (managed zstd)" "$run" "$db_bytes" - "$psbm_restore_db"'; restored "$W/rm" $db_bytes'
  mkdir -p "$W/rt" "$W/rb"
  measure restore "tar | zstd -3 -T0" "$run" "$db_bytes" - 'zstd -d -q -c "$W/tar/db.tar.zst" | tar -C "$W/rt" -xf -; restored "$W/rt" $db_bytes'
  measure restore restic "$run" "$db_bytes" - 'restic -r "$W/restic" restore -q latest --tag db --target "$W/rr"; restored "$W/rr" $db_bytes'
  measure restore borg "$run" "$db_bytes" - 'cd "$W/rb" && borg extract "$W/borg::nochange"; restored "$W/rb" $db_bytes'
  rm -rf "$W/rp" "$W/rm" "$W/rt" "$W/rr" "$W/rb"

  [ "$native" = 1 ] && measure verify psbackup "$run" "$db_bytes" - 'psbackup check --repository "$W/psb" --read-data >/dev/null'
  [ "$managed" = 1 ] && measure verify "psbackup (managed zstd)" "$run" "$db_bytes" - 'psbackupm check --repository "$W/psbm" --read-data >/dev/null'
  measure verify "tar | zstd -3 -T0" "$run" "$db_bytes" - 'zstd -t -q "$W/tar/db.tar.zst"'
  measure verify restic "$run" "$db_bytes" - 'restic -r "$W/restic" check -q --read-data'
  measure verify borg "$run" "$db_bytes" - 'borg check --verify-data "$W/borg"'

  # WAL (written by UnisonDB's own code): a store snapshot first (untimed; PITR needs it), then
  # ship the 64 sealed segments and the active one's prefix.
  psbackup snapshot create --data-dir "$W/data" --namespace ledger --repository "$W/psb" >/dev/null
  measure walship psbackup "$run" "$wal_bytes" - 'psbackup wal ship --data-dir "$W/data" --namespace ledger --repository "$W/psb" >/dev/null'
  if [ "$managed" = 1 ]; then
    psbackupm snapshot create --data-dir "$W/data" --namespace ledger --repository "$W/psbm" >/dev/null
    measure walship "psbackup (managed zstd)" "$run" "$wal_bytes" - 'psbackupm wal ship --data-dir "$W/data" --namespace ledger --repository "$W/psbm" >/dev/null'
  fi
  measure walship "tar | zstd -3 -T0" "$run" "$wal_bytes" - 'tar -C "$W/data" -cf - ledger | zstd -3 -T0 -q -f -o "$W/tar/wal.tar.zst"'
  measure walship restic "$run" "$wal_bytes" - 'cd "$W/data" && restic -r "$W/restic" backup -q --tag wal ledger'
  measure walship borg "$run" "$wal_bytes" - 'cd "$W/data" && borg create --compression zstd,3 "$W/borg::wal" ledger'

  mkdir -p "$W/pt" "$W/pb"
  measure pitr psbackup "$run" "$wal_bytes" - "psbackup pitr --namespace ledger --repository \"\$W/psb\" --target-log-index $last_log_index --target-data-dir \"\$W/pp\" >/dev/null"
  [ "$managed" = 1 ] && measure pitr "psbackup (managed zstd)" "$run" "$wal_bytes" - "psbackupm pitr --namespace ledger --repository \"\$W/psbm\" --target-log-index $last_log_index --target-data-dir \"\$W/pm\" >/dev/null"
  measure pitr "tar | zstd -3 -T0" "$run" "$wal_bytes" - 'zstd -d -q -c "$W/tar/wal.tar.zst" | tar -C "$W/pt" -xf -'
  measure pitr restic "$run" "$wal_bytes" - 'restic -r "$W/restic" restore -q latest --tag wal --target "$W/pr"'
  measure pitr borg "$run" "$wal_bytes" - 'cd "$W/pb" && borg extract "$W/borg::wal"'
  rm -rf "$W/pp" "$W/pm" "$W/pt" "$W/pr" "$W/pb"

  # One newly sealed segment: in-process (engine call, no process start) and through the CLI,
  # both in the steady state "the repository holds the earlier segment, the WAL the new one".
  bench ship-latency --out "$ds" --work "$W/latency" --cases "$cases" --run "$run" --tsv "$raw" >&2
  bench ship-latency --target local --out "$ds" --work "$W/latency" --cases "$cases" --run "$run" --tsv "$raw" >&2
  # A segment is linked with its walfs v1 sidecar, as UnisonDB leaves it.
  seg_ln() { ln "$1" "$2/"; [ ! -e "$1.idx" ] || ln "$1.idx" "$2/"; }
  mkdir -p "$W/s1/data/ledger/wal"
  psbackup repo init --repository "$W/s1/repo" >/dev/null
  seg_ln "${wal_segments[0]}" "$W/s1/data/ledger/wal"
  psbackup wal ship --data-dir "$W/s1/data" --namespace ledger --repository "$W/s1/repo" >/dev/null
  seg_ln "${wal_segments[1]}" "$W/s1/data/ledger/wal"
  measure ship1 "psbackup (CLI)" "$run" "$(bytes "${wal_segments[1]}")" - 'psbackup wal ship --data-dir "$W/s1/data" --namespace ledger --repository "$W/s1/repo" >/dev/null'
  # The same with every earlier segment still in the WAL (UnisonDB standalone never removes
  # them): a ship must cost the new segment, not the WAL.
  last=$(( ${#wal_segments[@]} - 2 ))     # the newest sealed one (the last file is the active segment)
  mkdir -p "$W/s2/data/ledger/wal"
  psbackup repo init --repository "$W/s2/repo" >/dev/null
  for f in "${wal_segments[@]:0:$last}"; do seg_ln "$f" "$W/s2/data/ledger/wal"; done
  psbackup wal ship --data-dir "$W/s2/data" --namespace ledger --repository "$W/s2/repo" >/dev/null
  seg_ln "${wal_segments[$last]}" "$W/s2/data/ledger/wal"
  measure ship1 "psbackup (CLI, WAL keeps all)" "$run" "$(bytes "${wal_segments[$last]}")" - 'psbackup wal ship --data-dir "$W/s2/data" --namespace ledger --repository "$W/s2/repo" >/dev/null'

  if [ "$run" = 1 ]; then
    # Peak RSS as the data grows: the same full backup of the smaller dataset.
    rm -rf "$W/small"; mkdir -p "$W/small"
    mv "$out/copies/db-small" "$W/small/db"
    psbackup repo init --repository "$W/small/psb" >/dev/null
    measure full-small psbackup "$run" "$(bytes "$W/small/db")" "$W/small/psb" "W=\"\$W/small\"; $psb_backup_db"
  fi
  rm -rf "$work"
done
fi
rm -rf "$out/copies"

# --- 5. Table ---------------------------------------------------------------------------------------
{
  echo "# PSBackup benchmark results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ); $runs run(s) in $(( $(date +%s) - start )) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  if [ "$real" = 1 ]; then
    echo "Real tree: a copy of $real_source as Debian installed it ($(dpkg-query -S "$real_source" 2>/dev/null | tr ',' '\n' | wc -l) packages own files there; Debian $(cat /etc/debian_version 2>/dev/null)): $(find "$real_source" -type f | wc -l) files, $(( $(bytes "$real_source") / 1048576 )) MiB; its $(find "$real_source" -type l | wc -l) symbolic links are left out of the copy (an object holds no links)."
  fi
  if [ "$synthetic" = 1 ]; then
    echo "Synthetic set: ${size} MiB object store + ${segments} × 16 MiB WAL segments (seed $seed), smaller dataset ${small} MiB; PSBackup backs up and restores the ${#objects[@]} objects in one CLI call each way (--dir '*' --object '*')."
  fi
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(df -h --output=fstype "$out" | tail -1 | tr -d ' ') on $(df --output=source "$out" | tail -1)."
  echo "Peers: $(zstd --version | sed 's/.*v\([0-9.]*\).*/zstd \1/'), $(restic version | cut -d' ' -f1-2) (repository v2, compression auto), $(borg --version) (--compression zstd,3, --encryption repokey); PSBackup repository encrypted (passphrase; the key-file rows skip its PBKDF2)."
  echo
  bench report --raw "$raw"
} | tee "$out/results.md"
