#!/usr/bin/env bash
# `make install` / `make uninstall` (README "Operating it"): the built program, its native addon
# and its production npm packages under $DESTDIR$PREFIX/lib/xcopy-agent, the command at
# $PREFIX/bin/xcopy-agent, and the systemd unit xcopy-agent-target.service under
# $PREFIX/lib/systemd/system (a path systemd reads for /usr and /usr/local alike).
# Usage: scripts/install.sh install|uninstall   (PREFIX default /usr/local; DESTDIR honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
LIB="$DESTDIR$PREFIX/lib/xcopy-agent"
BIN="$DESTDIR$PREFIX/bin"
UNIT_DIR="$DESTDIR$PREFIX/lib/systemd/system"
UNIT=xcopy-agent-target.service

case "${1:-}" in
install)
  for f in dist/.built native/build/Release/xcopy_native.node node_modules/.package-lock.json; do
    [ -e "$f" ] || { echo "install: $f missing: run \`make setup\` first" >&2; exit 1; }
  done
  stage="$(mktemp -d "${TMPDIR:-/tmp}/xcopy-agent-install.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/native/build/Release"
  cp -a bin dist package.json package-lock.json README.md "$stage/"
  cp -a native/build/Release/xcopy_native.node "$stage/native/build/Release/"
  # The production packages: the installed tree minus the dev ones, without the network.
  cp -a node_modules "$stage/"
  (cd "$stage" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  rm -rf "$stage/dist/test" "$stage/dist/bench"
  mkdir -p "$LIB" "$BIN" "$UNIT_DIR"
  rm -rf "$LIB.new" && cp -a "$stage" "$LIB.new" && rm -rf "$LIB" && mv "$LIB.new" "$LIB"
  chmod -R u=rwX,go=rX "$LIB"
  ln -sfn "../lib/xcopy-agent/bin/xcopy-agent" "$BIN/xcopy-agent"
  sed "s|@PREFIX@|$PREFIX|g" packaging/systemd/$UNIT.in > "$UNIT_DIR/$UNIT"
  chmod 0644 "$UNIT_DIR/$UNIT"
  echo "installed: $BIN/xcopy-agent, $LIB, $UNIT_DIR/$UNIT"
  ;;
uninstall)
  rm -rf "$LIB"
  [ -L "$BIN/xcopy-agent" ] && rm -f "$BIN/xcopy-agent"
  rm -f "$UNIT_DIR/$UNIT"
  echo "uninstalled from $DESTDIR$PREFIX (configuration in /etc/xcopy-agent and state in /var/lib/xcopy-agent are kept)"
  ;;
*)
  echo "usage: $0 install|uninstall" >&2
  exit 2
  ;;
esac
