#!/usr/bin/env bash
# Builds the browser auditor (relayer/auditor-web) into OUT_DIR:
#   auditor.js, auditor_bg.wasm  wasm-bindgen's glue and module: a node serves them with ui.js
#                                at /auditor/ for its dashboard's verify action
#   ui.js                        the page code both pages share
#   verify.html                  the standalone proof page: one file, glue, page code and wasm
#                                inlined, so it opens from disk
# The wasm is compiled as the contract is (scripts/wasm-cargo.sh), post-processed by the
# wasm-bindgen CLI of the crate's version (cached, scripts/versions.sh) and shrunk by wasm-opt;
# its size must stay within MAX_BYTES. Usage:
#   build-auditor-web.sh TARGET_DIR OUT_DIR MAX_BYTES RUST_LLD
set -euo pipefail
target_dir=$1 out=$2 max_bytes=$3 lld=$4
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/versions.sh
source "$top/scripts/versions.sh"
bindgen=$WASM_BINDGEN_ROOT/bin/wasm-bindgen
[[ -x $bindgen ]] || "$top/scripts/install-deps.sh"

echo "build-auditor-web: compiling relayer-auditor-web for wasm32 (release, build-std)..."
# The contract's flags, so the two builds share one target dir and its std build.
"$top/scripts/wasm-cargo.sh" "$target_dir" "$lld" "-C link-arg=--allow-undefined" --lib -p relayer-auditor-web

staging=$target_dir/auditor-web-bindgen
rm -rf "$staging"
"$bindgen" --target web --no-typescript --out-name auditor --out-dir "$staging" \
  "$target_dir/wasm32-unknown-unknown/wasm/relayer_auditor_web.wasm"
mkdir -p "$out"
if command -v wasm-opt >/dev/null; then
  wasm-opt -Oz --mvp-features --strip-debug "$staging/auditor_bg.wasm" -o "$out/auditor_bg.wasm"
else
  cp "$staging/auditor_bg.wasm" "$out/auditor_bg.wasm"
fi
cp "$staging/auditor.js" "$out/auditor.js"
cp "$top/relayer/auditor-web/web/ui.js" "$out/ui.js"
python3 - "$top/relayer/auditor-web/web/verify.html" "$out" <<'PY'
import base64, pathlib, sys
template, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
parts = {
    "@GLUE@": (out / "auditor.js").read_text(),
    "@UI@": (out / "ui.js").read_text(),
    "@WASM_BASE64@": base64.b64encode((out / "auditor_bg.wasm").read_bytes()).decode(),
}
page = template.read_text()
for marker, text in parts.items():
    if "</script" in text.lower():
        sys.exit(f"build-auditor-web: {marker} contains </script and cannot be inlined")
    if page.count(marker) != 1:
        sys.exit(f"build-auditor-web: {template} must hold {marker} once")
    page = page.replace(marker, text)
(out / "verify.html").write_text(page)
PY
size=$(stat -c %s "$out/auditor_bg.wasm")
echo "build-auditor-web: $out/auditor_bg.wasm is $size bytes (limit $max_bytes), $(gzip -9 -c "$out/auditor_bg.wasm" | wc -c) gzipped; verify.html $(stat -c %s "$out/verify.html") bytes"
if (( size > max_bytes )); then
  echo "build-auditor-web: the auditor's wasm is larger than $max_bytes bytes" >&2
  exit 1
fi
