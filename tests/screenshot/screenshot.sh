#!/usr/bin/env bash
# Renders an HTML file with headless Chromium and saves a PNG of it, so that tests (and people
# writing the README) can see what a report looks like in a real browser.
#
#   tests/screenshot/screenshot.sh REPORT.html OUT.png [WIDTH,HEIGHT]
#
# Uses `chromium` or `chromium-browser` from PATH (or $CHROMIUM). A throwaway profile keeps the
# run from touching (or depending on) the user's own browser profile.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]" >&2
    exit 2
fi
html=$1
png=$2
size=${3:-1400,2000}

browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
    browser=$(command -v chromium || command -v chromium-browser || true)
fi
if [ -z "$browser" ]; then
    echo "$0: chromium not found on PATH" >&2
    exit 3
fi

abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$(pwd)" "$(basename "$1")"); }
html=$(abs "$html")
png=$(abs "$png")
url="file://${html// /%20}"
rm -f "$png"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

# Headless Chromium sometimes lingers after writing the file; the timeout bounds a stuck run.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --no-first-run --no-default-browser-check --user-data-dir="$profile" \
    --window-size="$size" --screenshot="$png" "$url" >/dev/null 2>&1 || true

if [ ! -s "$png" ]; then
    echo "$0: chromium wrote no screenshot to $png" >&2
    exit 1
fi
echo "$png"
