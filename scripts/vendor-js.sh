#!/usr/bin/env bash
# Refresh the vendored browser libraries from their npm registry tarballs (no install scripts, no dependencies).
#
#   three  -> src/shoal/web/static/vendor/three/   shipped with the app (import map: "three", "three/addons/")
#   iwer   -> tests/browser/vendor/iwer/           WebXR device emulation, for the browser tests only
#   networked-aframe, aframe, socket.io-client
#          -> src/shoal/dialects/naf/demo/vendor/  what NAF's example pages load (demo under /examples/naf/)
#   NAF's own examples/basic.html and basic-persistent.html -> src/shoal/dialects/naf/demo/, adapted (see below)
#
# Each destination gets the package's LICENSE, a VERSION file (name, version, npm integrity) and SHA256SUMS
# for every vendored file; tests/browser/test_vendor.py checks the sums. Bump a version here and re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

THREE_VERSION=0.187.0
IWER_VERSION=2.5.0
NAF_VERSION=0.14.3
AFRAME_VERSION=1.8.0
SOCKETIO_CLIENT_VERSION=4.8.1
NAF_DEMO=src/shoal/dialects/naf/demo

THREE_FILES=(
  build/three.module.js
  build/three.core.js
  examples/jsm/webxr/VRButton.js
  examples/jsm/webxr/ARButton.js
  examples/jsm/controls/PointerLockControls.js
)
IWER_FILES=(build/iwer.min.js)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# vendor NAME VERSION DEST FILE...: unpack NAME@VERSION and copy FILEs into DEST.
# build/X lands at DEST/X; examples/jsm/Y keeps its layout under DEST/addons/Y (what "three/addons/" maps to).
vendor() {
  local name=$1 version=$2 dest=$3
  shift 3
  echo "== $name@$version -> $dest"
  local tarball
  tarball=$(cd "$work" && npm pack --silent "$name@$version")
  mkdir -p "$work/$name"
  tar xzf "$work/$tarball" -C "$work/$name"
  local integrity
  integrity=$(npm view "$name@$version" dist.integrity)

  rm -rf "$dest"
  mkdir -p "$dest"
  local file target
  for file in "$@"; do
    case $file in
      build/*) target=${file#build/} ;;
      examples/jsm/*) target=addons/${file#examples/jsm/} ;;
      *) target=$file ;;
    esac
    mkdir -p "$dest/$(dirname "$target")"
    cp "$work/$name/package/$file" "$dest/$target"
  done
  cp "$work/$name/package/LICENSE" "$dest/LICENSE"
  printf '%s %s\nnpm integrity %s\n' "$name" "$version" "$integrity" >"$dest/VERSION"
  (cd "$dest" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
  cat "$dest/SHA256SUMS"
}

vendor three "$THREE_VERSION" src/shoal/web/static/vendor/three "${THREE_FILES[@]}"
vendor iwer "$IWER_VERSION" tests/browser/vendor/iwer "${IWER_FILES[@]}"

vendor networked-aframe "$NAF_VERSION" "$NAF_DEMO/vendor/networked-aframe" dist/networked-aframe.min.js
vendor aframe "$AFRAME_VERSION" "$NAF_DEMO/vendor/aframe" dist/aframe-master.min.js
vendor socket.io-client "$SOCKETIO_CLIENT_VERSION" "$NAF_DEMO/vendor/socket.io-client" dist/socket.io.min.js

# NAF's example pages, changed only where they cannot work against Shoal offline: the scripts they load
# from CDNs or from NAF's own server root point at the vendored copies (relative, so the pages work under
# /examples/naf/), the CDN-only decorations (aframe-extras, environment, randomizer) and easyrtc.js are
# dropped, and `adapter: wseasyrtc` becomes socketio, or uws with `serverURL: /naf`. Each edit must
# match, so a new NAF version with different pages fails here instead of shipping a half-adapted page.
naf_page() {
  local source=$1 target=$2 adapter=$3
  local page="$work/networked-aframe/package/examples/$source"
  for needle in 'aframe.io/releases/1.7.0/aframe.min.js' 'socket.io/4.8.1/socket.io.min.js' \
    '/dist/networked-aframe.js' 'adapter: wseasyrtc'; do
    grep -qF "$needle" "$page" || { echo "examples/$source no longer contains $needle" >&2; exit 1; }
  done
  sed -e 's|https://aframe.io/releases/1.7.0/aframe.min.js|vendor/aframe/dist/aframe-master.min.js|' \
    -e 's|https://cdnjs.cloudflare.com/ajax/libs/socket.io/4.8.1/socket.io.min.js|vendor/socket.io-client/dist/socket.io.min.js|' \
    -e 's|"/dist/networked-aframe.js"|"vendor/networked-aframe/dist/networked-aframe.min.js"|' \
    -e 's|"/js/|"js/|; s|"/css/|"css/|' \
    -e '\|/easyrtc/easyrtc.js|d; \|https://cdn.jsdelivr.net/|d' \
    -e "s|adapter: wseasyrtc|adapter: $adapter|" \
    "$page" >"$NAF_DEMO/$target"
  echo "   $NAF_DEMO/$target  (examples/$source, adapter: $adapter)"
}
echo "== NAF example pages -> $NAF_DEMO"
rm -rf "$NAF_DEMO/js" "$NAF_DEMO/css"
mkdir -p "$NAF_DEMO/js" "$NAF_DEMO/css"
naf_page basic.html basic.html socketio
naf_page basic.html basic-uws.html 'uws; serverURL: /naf'
naf_page basic-persistent.html basic-persistent.html socketio
naf_page basic-persistent.html basic-persistent-uws.html 'uws; serverURL: /naf'
for file in js/spawn-in-circle.component.js js/color-changer.component.js css/style.css; do
  cp "$work/networked-aframe/package/examples/$file" "$NAF_DEMO/$file"
done
