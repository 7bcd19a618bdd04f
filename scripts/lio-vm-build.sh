#!/usr/bin/env bash
# Builds what the LIO VM boots (docs/lio.md): Debian's own kernel, fetched with `apt-get
# download` and unpacked with `dpkg-deb -x` (never installed on this host), and a base initramfs
# of busybox-static, the LIO modules in load order and an /init that loads them, mounts configfs,
# brings eth0 up and runs /etc/lio-config.sh (appended per VM as a second cpio archive).
#
# Usage: scripts/lio-vm-build.sh [CACHE_DIR]   (default: $XCOPY_LIO_CACHE, else
#        ${XDG_CACHE_HOME:-$HOME/.cache}/xcopy-agent/lio-vm). Prints two lines:
#        kernel=PATH and initramfs=PATH. Quick when both are cached; concurrent runs wait (flock).
set -euo pipefail

cache=${1:-${XCOPY_LIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xcopy-agent/lio-vm}}
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

for tool in apt-get apt-cache dpkg-deb depmod modprobe cpio gzip; do
  command -v "$tool" >/dev/null || { echo "lio-vm-build: $tool is missing (run 'make setup')" >&2; exit 1; }
done
busybox=/bin/busybox
if [[ "$(LC_ALL=C ldd "$busybox" 2>&1 || true)" != *'not a dynamic executable'* ]]; then
  echo "lio-vm-build: $busybox is not static (install busybox-static: 'make setup')" >&2
  exit 1
fi

# The kernel the meta package linux-image-amd64 points at (e.g. linux-image-6.1.0-57-amd64).
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
  apt-get update -q >/dev/null
  pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
fi
[ -n "$pkg" ] || { echo "lio-vm-build: apt knows no linux-image-amd64 kernel" >&2; exit 1; }
ver=${pkg#linux-image-}
out="$cache/$ver"
if [ -f "$out/initramfs.cpio.gz" ] && [ -f "$out/vmlinuz" ]; then
  echo "kernel=$out/vmlinuz"
  echo "initramfs=$out/initramfs.cpio.gz"
  exit 0
fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
  apt-get update -q >/dev/null
  (cd "$work" && apt-get download -q "$pkg" >/dev/null)
}
dpkg-deb -x "$work"/"$pkg"_*.deb "$work/kroot"
depmod -b "$work/kroot" "$ver"

root="$work/initramfs"
mkdir -p "$root"/{bin,dev,proc,sys,etc,lib/modules,run,tmp}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
# Load order: each module's dependencies first, each module once; built-in ones are skipped, and
# so are the PCLMULQDQ variants (soft dependencies that need a CPU feature TCG's CPU may lack).
: >"$root/etc/modules.order"
for m in configfs target_core_mod target_core_file target_core_iblock iscsi_target_mod crc32c_generic virtio_pci virtio_net; do
  modprobe -d "$work/kroot" -S "$ver" --show-depends "$m" | while read -r kind path _; do
    [ "$kind" = insmod ] || continue
    name=$(basename "$path")
    [[ "$name" == *pclmul* ]] && continue
    grep -qx "$name" "$root/etc/modules.order" && continue
    cp "$path" "$root/lib/modules/$name"
    echo "$name" >>"$root/etc/modules.order"
  done
done
cat >"$root/init" <<'EOF'
#!/bin/sh
# The LIO VM's init (scripts/lio-vm-build.sh). Markers on the console: LIO-VM-READY, LIO-VM-FAIL.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "LIO-VM-FAIL: $*"; exit 1; }  # init exits: the kernel panics, QEMU (-no-reboot) exits
while read -r m; do insmod "/lib/modules/$m" || fail "insmod $m"; done </etc/modules.order
mount -t configfs configfs /sys/kernel/config || fail "mount configfs"
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up || fail "eth0"
[ -f /etc/lio-config.sh ] || fail "no /etc/lio-config.sh"
sh -e /etc/lio-config.sh || fail "lio-config.sh exit status $?"
echo LIO-VM-READY
while :; do sleep 3600; done
EOF
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.cpio.gz"
mkdir -p "$out"
cp "$work/kroot/boot/vmlinuz-$ver" "$out/vmlinuz"
cp "$root/etc/modules.order" "$out/modules.order"
mv "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
echo "kernel=$out/vmlinuz"
echo "initramfs=$out/initramfs.cpio.gz"
