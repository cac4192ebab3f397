#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (Debian
# packages, staticcheck), then checks formatting, vets, lints and runs every
# test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

# Outside oracles the tests compare vdisk against.
packages=(dosfstools mtools xxd fdisk libnbd-bin python3-libnbd qemu-utils fio nbdkit graphviz jq strace)
# vdisk build against genimage: genimage's own test suite (../shared/genimage-test,
# sharness) runs with a genimage that execs vdisk build and needs hexdump; Debian's
# genimage is the reference binary (its --configdump reads configurations as
# libconfuse does).
# The board configurations' root file systems come from mke2fs and are checked by
# e2fsck; diffoscope says where two images that should be equal differ; python3's
# uuid module checks the name-based GUIDs.
packages+=(genimage bsdextrautils e2fsprogs diffoscope-minimal python3)
# The web view's tests drive the page in a real browser (chromedp), with a
# font for its screenshots.
packages+=(chromium fonts-dejavu-core)
# The VM test (vmtest/): QEMU boots a Debian kernel whose initramfs holds a
# static busybox and nbd-client.
packages+=(qemu-system-x86 busybox-static nbd-client)
# Tests of values that differ between platforms run once more as linux/mips64le
# binaries under qemu-user, where os.O_* are numbered otherwise.
packages+=(qemu-user)
# The RBD store (-tags rbd,pacific): librbd and librados to build against,
# a throwaway Ceph cluster (scripts/ceph-micro.sh) to test against, and
# QEMU's RBD driver as an outside reader of the images.
packages+=(ceph-mon ceph-osd ceph-mgr ceph-common librbd-dev librados-dev qemu-block-extra)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO="sudo"
	$SUDO apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The VM test's kernel: the linux-image-<version>-amd64 package that
# linux-image-amd64 depends on, unpacked (not installed: the host's own
# kernel and boot loader stay untouched) into a cache directory the test
# reads. A kernel already there is reused, so repeated runs download
# nothing. VDISK_VM=0 skips it, as it skips the VM test.
vm_cache="${VDISK_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vdisk-vm}"
if [ "${VDISK_VM:-1}" != 0 ] && ! compgen -G "$vm_cache/kernel-*/boot/vmlinuz-*" >/dev/null; then
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO="sudo"
	kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
	if [ -z "$kpkg" ]; then
		$SUDO apt-get update -q >/dev/null
		kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
	fi
	[ -n "$kpkg" ] || { echo "no linux-image-*-amd64 package behind linux-image-amd64" >&2; exit 1; }
	echo "== fetching $kpkg for the VM test into $vm_cache"
	mkdir -p "$vm_cache"
	rm -rf "$vm_cache/download"
	mkdir "$vm_cache/download"
	# apt warns that it downloads unsandboxed as root; show its output
	# only if it fails.
	if ! out=$(cd "$vm_cache/download" && apt-get download -q "$kpkg" 2>&1); then
		echo "$out" >&2
		exit 1
	fi
	# Unpack beside, then rename, so an interrupted run leaves no tree that
	# looks complete.
	rm -rf "$vm_cache/$kpkg.partial"
	dpkg -x "$vm_cache"/download/"$kpkg"_*.deb "$vm_cache/$kpkg.partial"
	mv "$vm_cache/$kpkg.partial" "$vm_cache/kernel-${kpkg#linux-image-}"
	rm -rf "$vm_cache/download"
fi

GOBIN="$(go env GOPATH)/bin"
if [ ! -x "$GOBIN/staticcheck" ]; then
	echo "== installing staticcheck"
	go install honnef.co/go/tools/cmd/staticcheck@latest
fi

echo "== go mod tidy"
# go.mod and go.sum say what the code imports, no more and no less.
if ! go mod tidy -diff; then
	echo "go mod tidy would change go.mod or go.sum (the diff above): run go mod tidy"; exit 1
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

# The RBD store is cgo behind build tags; the default build stays pure Go.
# VDISK_RBD=0 skips its checks and tests.
rbd_tags=pacific,rbd

echo "== go vet"
go vet ./...
# The packages with files behind the rbd tag.
rbd_pkgs=(./disk/ ./cmd/vdisk/)
[ "${VDISK_RBD:-1}" = 0 ] || go vet -tags "$rbd_tags" "${rbd_pkgs[@]}"

echo "== staticcheck"
"$GOBIN/staticcheck" ./...
[ "${VDISK_RBD:-1}" = 0 ] || "$GOBIN/staticcheck" -tags "$rbd_tags" "${rbd_pkgs[@]}"

echo "== go test -race"
go test -race -timeout 20m "$@" ./...

echo "== os flags on linux/mips64le (qemu-user)"
GOARCH=mips64le go test -exec qemu-mips64el -run '^TestOpenFileOSFlags$' .

if [ "${VDISK_RBD:-1}" != 0 ]; then
	# One cluster for every package's RBD tests: the one VDISK_CEPH_CONF
	# names, or else a throwaway one (scripts/ceph-micro.sh, about 15 s)
	# that is stopped by its pid files when this script exits, however it
	# exits (and by the script's watchdog should this shell be killed).
	if [ -z "${VDISK_CEPH_CONF:-}" ]; then
		ceph_dir=$(mktemp -d -t vdisk-ceph.XXXXXX)
		trap 'scripts/ceph-micro.sh stop "$ceph_dir/cluster"; rm -rf "$ceph_dir"' EXIT
		echo "== starting a throwaway Ceph cluster (scripts/ceph-micro.sh)"
		VDISK_CEPH_CONF=$(scripts/ceph-micro.sh start "$ceph_dir/cluster" $$ 2>"$ceph_dir/start.log") ||
			{ cat "$ceph_dir/start.log" >&2; exit 1; }
		export VDISK_CEPH_CONF
	fi
	echo "== go test -race -tags $rbd_tags -run RBD (the RBD store, and vdisk serving RBD images, against Ceph)"
	go test -race -timeout 10m -tags "$rbd_tags" -run 'RBD' "${rbd_pkgs[@]}"
fi
