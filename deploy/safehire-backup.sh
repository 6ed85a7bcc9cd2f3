#!/bin/sh
# Online backup of the safehire database, safe while the server runs and writes:
#
#     safehire-backup.sh [DATABASE] [BACKUP_FOLDER]
#
# `safehire backup` copies the database inside one read transaction (VACUUM INTO): a
# consistent snapshot taken without pausing the writer. It writes the copy beside its final
# name, verifies the copy's audit hash chain, fsyncs it and only then renames it into place,
# so a backup file that exists is whole and verified. This script names the copies by time and
# keeps the newest BACKUP_KEEP of them.
#
# The master key is NOT in the copy, by design: back it up separately (deploy/KEYS.md). A
# database without its key can be audited but never answers a check again.
#
# Needs: safehire, coreutils. Environment: BACKUP_KEEP (default 14), BACKUP_SAFEHIRE (the
# safehire binary, default: safehire on PATH).
set -eu

db=${1:-/var/lib/safehire/safehire.db}
dest=${2:-/var/lib/safehire-backup}
keep=${BACKUP_KEEP:-14}
safehire=${BACKUP_SAFEHIRE:-safehire}

case $keep in
'' | *[!0-9]* | 0)
    echo "safehire-backup: BACKUP_KEEP must be a whole number of at least 1" >&2
    exit 2
    ;;
esac
[ -f "$db" ] || {
    echo "safehire-backup: no database at $db" >&2
    exit 1
}

umask 077
mkdir -p "$dest"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dest/safehire-$stamp.db"
if [ -e "$final" ]; then
    echo "safehire-backup: $final already exists (two runs in one second?)" >&2
    exit 1
fi

"$safehire" backup "$final" --db "$db"
echo "safehire-backup: wrote $final"

# Keep the newest $keep copies: the glob sorts by name, which is by time.
set -- "$dest"/safehire-[0-9]*T[0-9]*Z.db
count=$#
for old in "$@"; do
    [ "$count" -gt "$keep" ] || break
    rm -f -- "$old"
    count=$((count - 1))
done
