# Shared by the bench scripts: builds the release binary, starts a fresh server with the dev
# defaults in a temporary folder (removed on exit), exports SAFEHIRE_SERVER and cds there.
# Sets $bin to the binary.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/safehire"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"

SAFEHIRE_METRICS__LISTEN=127.0.0.1:0 "$bin" serve --listen 127.0.0.1:0 2> serve.log &
server=$!
for _ in $(seq 100); do
  addr="$(sed -n 's/.*safehire listening on \([0-9.:]*\).*/\1/p' serve.log | head -1)"
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat serve.log; echo "the server did not start" >&2; exit 1; }
export SAFEHIRE_SERVER="https://$addr"

# Seconds since the `date +%s.%N` value $1.
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'; }
