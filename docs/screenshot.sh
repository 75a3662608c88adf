#!/usr/bin/env bash
# Screenshots a report.html with headless Chromium, to check that every chart and its text
# render in a real browser with nothing fetched from the network.
#
#   docs/screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]
#
# Needs `chromium` (Debian: apt-get install chromium). --no-sandbox because CI runs as root;
# the window is tall because a full report is long, and Chromium crops to the window.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]" >&2
    exit 2
fi
report=$(realpath "$1")
out=$(realpath -m "$2")
size=${3:-1400x5000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z $browser ]]; then
    echo "no chromium found; install it (Debian: apt-get install chromium)" >&2
    exit 1
fi

"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --screenshot="$out" --window-size="${size/x/,}" "file://$report" 2>/dev/null
test -s "$out"
echo "wrote $out"
