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
#   monitor    the longnames copy with the monitor minifilter loaded
#              ("vdisk --filter monitor cp -r") against the same copy without
#              it: the cost of Filemon-style recording (issue 6: <= 1.30)
# Prints each time, the ratio peer/vdisk (how many times faster vdisk is; for
# format, vdisk/mkfs.fat), and vdisk's peak RSS. Every image vdisk writes is
# checked with fsck.fat -n.
#
# Both sides are timed the same way (wall clock around the process; peak RSS
# from GNU time when installed, else from /proc sampling in a separate,
# untimed run), RUNS times on fresh images, alternating; the best time of
# each side counts, which keeps one noisy run on a shared machine from
# deciding the ratio. mcopy with thousands of long names in one directory
# is quadratic (minutes for 2,000): it runs once, cut off after
# MCOPY_TIMEOUT seconds, and a cut-off run prints the ratio as ">=".
#
# Usage: bench/fat.sh                 # all workloads
#        FILES=500 bench/fat.sh       # fewer files
#        RUNS=5 MCOPY_TIMEOUT=600 WORKLOADS="longnames bigfile" bench/fat.sh
#        VDISK=/path/to/vdisk bench/fat.sh   # measure that binary
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${FILES:-2000}
RUNS=${RUNS:-3}
MCOPY_TIMEOUT=${MCOPY_TIMEOUT:-60}
WORKLOADS=${WORKLOADS:-"longnames shortnames bigfile format monitor"}
for t in mkfs.fat fsck.fat mcopy; do
	command -v "$t" >/dev/null || { echo "bench/fat.sh: $t not installed (apt-get install dosfstools mtools)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-fatbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# VDISK names a vdisk binary to measure instead of building ./cmd/vdisk.
bin=${VDISK:-$work/vdisk}
[ -n "${VDISK:-}" ] || go build -o "$bin" ./cmd/vdisk
export MTOOLS_SKIP_CHECK=1

# now: seconds since the epoch with nanoseconds.
now() { date +%s.%N; }

gnutime=
if [ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1; then
	gnutime=/usr/bin/time
fi

# timed CMD...: runs CMD, sets $secs (wall clock) and $rss (peak KiB, when
# GNU time is installed; else 0). Returns CMD's status.
timed() {
	local t0 t1 rc=0
	t0=$(now)
	if [ -n "$gnutime" ]; then
		"$gnutime" -f %M -o "$work/rss" "$@" >/dev/null || rc=$?
	else
		"$@" >/dev/null || rc=$?
	fi
	t1=$(now)
	secs=$(echo "$t1 - $t0" | bc -l)
	rss=0
	if [ -n "$gnutime" ]; then
		rss=$(tail -n 1 "$work/rss")
		case $rss in *[!0-9]* | "") rss=0 ;; esac
	fi
	return $rc
}

# sampled_rss CMD...: runs CMD untimed and prints its peak RSS in KiB
# (VmHWM sampled): the fallback without GNU time.
sampled_rss() {
	"$@" >/dev/null &
	local pid=$! peak=0 v
	while kill -0 "$pid" 2>/dev/null; do
		v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		[ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
		sleep 0.01
	done
	wait "$pid"
	echo "$peak"
}

# best A B: the smaller of two times ("" counts as none).
best() {
	if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi
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
		sync
		v= m= peak=0 cut=
		for r in $(seq 1 "$RUNS"); do
			fresh "$work/v.img"
			timed "$bin" cp -r "$src" "$work/v.img:/"
			v=$(best "$v" "$secs")
			[ "$rss" -gt "$peak" ] && peak=$rss
			fsck.fat -n "$work/v.img" >/dev/null || { echo "fsck.fat -n failed on vdisk's $w image" >&2; exit 1; }
			if [ "$w" = longnames ] && [ -n "$m" ]; then
				continue # mcopy is minutes here: once is enough
			fi
			fresh "$work/m.img"
			if [ "$w" = longnames ]; then
				rc=0
				timed timeout "$MCOPY_TIMEOUT" mcopy -s -i "$work/m.img" "$src" ::/ || rc=$?
				[ "$rc" = 124 ] && cut=">="
			else
				timed mcopy -s -i "$work/m.img" "$src" ::/
			fi
			m=$(best "$m" "$secs")
		done
		if [ -z "$gnutime" ]; then
			fresh "$work/v.img"
			peak=$(sampled_rss "$bin" cp -r "$src" "$work/v.img:/")
		fi
		case $w in
		longnames) target=">= 100x" ;;
		*) target=">= 1x" ;;
		esac
		printf '%-11s %11.3fs %11.3fs %2s%6.1fx   (mcopy/vdisk, best of %d%s; target %s; vdisk peak RSS %d MiB, target < 64)\n' "$w" "$v" "$m" "$cut" \
			"$(echo "$m / $v" | bc -l)" "$RUNS" "${cut:+, mcopy cut off after ${MCOPY_TIMEOUT}s}" "$target" $((peak / 1024))
		rm -rf "$src"
		;;
	monitor)
		src=$work/src-$w
		tree "$src" longnames
		sync
		v= m=
		for r in $(seq 1 "$RUNS"); do
			fresh "$work/v.img"
			timed "$bin" cp -r "$src" "$work/v.img:/"
			v=$(best "$v" "$secs")
			fresh "$work/m.img"
			timed "$bin" --filter monitor cp -r "$src" "$work/m.img:/"
			m=$(best "$m" "$secs")
			fsck.fat -n "$work/m.img" >/dev/null || { echo "fsck.fat -n failed on the monitored copy" >&2; exit 1; }
		done
		printf '%-11s %11.3fs %11.3fs %8.2fx   (with monitor/without, %d files, best of %d; target <= 1.30)\n' "$w" "$m" "$v" "$(echo "$m / $v" | bc -l)" "$FILES" "$RUNS"
		rm -rf "$src"
		;;
	format)
		v= m=
		for r in $(seq 1 "$RUNS"); do
			rm -f "$work/f.img" "$work/k.img"
			truncate -s 4G "$work/f.img" "$work/k.img"
			timed "$bin" format "$work/f.img" --fat 32
			v=$(best "$v" "$secs")
			timed mkfs.fat -F 32 "$work/k.img"
			m=$(best "$m" "$secs")
			fsck.fat -n "$work/f.img" >/dev/null || { echo "fsck.fat -n failed on vdisk's format" >&2; exit 1; }
		done
		printf '%-11s %11.3fs %11.3fs %8.2fx   (vdisk/mkfs.fat, best of %d; target <= 1.5)\n' "$w" "$v" "$m" "$(echo "$v / $m" | bc -l)" "$RUNS"
		;;
	*) echo "bench/fat.sh: unknown workload $w" >&2; exit 2 ;;
	esac
done
