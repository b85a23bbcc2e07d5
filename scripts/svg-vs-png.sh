#!/usr/bin/env bash
# Shows a figure's SVG (as a browser renders it) above its PNG, in one headless-Chromium
# screenshot, to check by eye that the two look alike (the plot kind names DejaVu Sans in the
# SVG and embeds it for the PNG). Not part of `make test`: it needs Chromium
# (`apt-get install -y chromium`) and a person to look at the result.
#
#   scripts/svg-vs-png.sh [figures/NAME] [OUT.png]    (default: figures/symptom_by_category)
set -euo pipefail
cd "$(dirname "$0")/.."
fig=${1:-figures/symptom_by_category}
out=${2:-/tmp/svg-vs-png.png}
command -v chromium >/dev/null || { echo "needs chromium (apt-get install -y chromium)" >&2; exit 2; }
size=$(head -c 200 "$fig.svg" | sed -n 's/.*width="\([0-9]*\)" height="\([0-9]*\)".*/\1 \2/p')
read -r w h <<<"$size"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$fig.svg" "$dir/a.svg"
cp "$fig.png" "$dir/a.png"
cat >"$dir/index.html" <<EOF
<!doctype html>
<body style="margin:0;background:#ccc;font:12px sans-serif">
<div>SVG (browser)</div><img src="a.svg" width="$w" height="$h" style="display:block">
<div>PNG (artifact)</div><img src="a.png" width="$w" height="$h" style="display:block">
</body>
EOF
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="$w,$((2 * h + 40))" --screenshot="$out" "file://$dir/index.html" 2>/dev/null
echo "wrote $out"
