#!/usr/bin/env bash
# Refresh the vendored browser libraries from their npm registry tarballs (no install scripts, no dependencies).
#
#   three  -> src/shoal/web/static/vendor/three/   shipped with the app (import map: "three", "three/addons/")
#   iwer   -> tests/browser/vendor/iwer/           WebXR device emulation, for the browser tests only
#
# Each destination gets the package's LICENSE, a VERSION file (name, version, npm integrity) and SHA256SUMS
# for every vendored file; tests/browser/test_vendor.py checks the sums. Bump a version here and re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

THREE_VERSION=0.187.0
IWER_VERSION=2.5.0

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
