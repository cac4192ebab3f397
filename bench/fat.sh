#!/usr/bin/env bash
# FAT benchmark: vdisk against mtools and mkfs.fat, side by side, in one run.
#
# Workloads (each on a fresh image, page cache warm, same host tree):
#   longnames  2,000 files of 4 KiB whose long names share a prefix
#              (small_file_number_0001.dat ...) copied into one directory:
#              "vdisk cp -r" against "mcopy -s"
#   shortnames the same with 8.3 names (F0001.DAT ...)
#   bigfile    one 128 MiB file
#   format     a 4 GiB sparse image as FAT32: "vdisk format" against mkfs.fat
# Prints each time, the ratio peer/vdisk (how many times faster vdisk is; for
# format, vdisk/mkfs.fat), and vdisk's peak RSS for the 128 MiB copy. Every
# image vdisk writes is checked with fsck.fat -n.
#
# Usage: bench/fat.sh                 # all workloads
#        FILES=500 bench/fat.sh       # fewer files (mtools is slow with long names)
#        WORKLOADS="bigfile format" bench/fat.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${FILES:-2000}
WORKLOADS=${WORKLOADS:-"longnames shortnames bigfile format"}
for t in mkfs.fat fsck.fat mcopy; do
	command -v "$t" >/dev/null || { echo "bench/fat.sh: $t not installed (apt-get install dosfstools mtools)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-fatbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
bin=$work/vdisk
go build -o "$bin" ./cmd/vdisk
export MTOOLS_SKIP_CHECK=1

# now: seconds since the epoch with nanoseconds.
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }

# peak_rss CMD...: runs CMD, prints its peak RSS in KiB (VmHWM sampled) on fd 3.
peak_rss() {
	"$@" &
	local pid=$! peak=0 v
	while kill -0 "$pid" 2>/dev/null; do
		v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		[ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
		sleep 0.05
	done
	wait "$pid"
	echo "$peak" >&3
}

tree() { # tree DIR KIND
	mkdir -p "$1"
	case $2 in
	longnames) for i in $(seq -f %04g 1 "$FILES"); do head -c 4096 /dev/urandom >"$1/small_file_number_$i.dat"; done ;;
	shortnames) for i in $(seq -f %04g 1 "$FILES"); do head -c 4096 /dev/urandom >"$1/F$i.DAT"; done ;;
	bigfile) head -c $((128 << 20)) /dev/urandom >"$1/big.bin" ;;
	esac
	cat "$1"/* >/dev/null
}

fresh() { # fresh IMAGE: a 1 GiB FAT32 superfloppy made by mkfs.fat
	rm -f "$1"
	mkfs.fat -F 32 -C "$1" $((1024 * 1024)) >/dev/null
}

printf '%-11s %12s %12s %9s\n' workload vdisk peer ratio
for w in $WORKLOADS; do
	case $w in
	longnames | shortnames | bigfile)
		src=$work/src-$w
		tree "$src" "$w"
		fresh "$work/v.img"
		fresh "$work/m.img"
		exec 3>"$work/rss"
		t0=$(now)
		peak_rss "$bin" cp -r "$src" "$work/v.img:/"
		t1=$(now)
		exec 3>&-
		rss=$(cat "$work/rss")
		t2=$(now)
		mcopy -s -i "$work/m.img" "$src" ::/
		t3=$(now)
		fsck.fat -n "$work/v.img" >/dev/null || { echo "fsck.fat -n failed on vdisk's $w image" >&2; exit 1; }
		v=$(elapsed "$t0" "$t1")
		m=$(elapsed "$t2" "$t3")
		printf '%-11s %11.3fs %11.3fs %8.1fx   (mcopy/vdisk; vdisk peak RSS %d MiB)\n' "$w" "$v" "$m" "$(echo "$m / $v" | bc -l)" $((rss / 1024))
		rm -rf "$src"
		;;
	format)
		rm -f "$work/f.img" "$work/k.img"
		truncate -s 4G "$work/f.img" "$work/k.img"
		t0=$(now)
		"$bin" format "$work/f.img" --fat 32 >/dev/null
		t1=$(now)
		t2=$(now)
		mkfs.fat -F 32 "$work/k.img" >/dev/null
		t3=$(now)
		fsck.fat -n "$work/f.img" >/dev/null || { echo "fsck.fat -n failed on vdisk's format" >&2; exit 1; }
		v=$(elapsed "$t0" "$t1")
		m=$(elapsed "$t2" "$t3")
		printf '%-11s %11.3fs %11.3fs %8.2fx   (vdisk/mkfs.fat; target <= 1.5)\n' "$w" "$v" "$m" "$(echo "$v / $m" | bc -l)"
		;;
	*) echo "bench/fat.sh: unknown workload $w" >&2; exit 2 ;;
	esac
done
