#!/usr/bin/env bash
# vdisk build against genimage, side by side, in one run: the same genimage
# configuration, the same root tree, both builders.
#
# The image (the issue's workload): an hdimage with one vfat partition that
# holds FILES files of 4 KiB with long names (in DIRS directories, by default
# one, as bench/fat.sh's longnames) and one file of BIG_MB MiB. genimage fills
# the volume with mkdosfs and one "mcopy -s" of the tree (with files = {...} it
# would run mcopy once per file); vdisk build formats and fills it itself.
# mcopy's time grows with the square of a directory's long names: spread over
# more directories (DIRS=10) genimage is much faster.
#
# Prints both times, the ratio genimage/vdisk (how many times faster vdisk
# is; target >= 20) and vdisk's peak RSS (target < 64 MiB). Checks that
# fsck.fat -n passes on vdisk's volume and that mtools reads the same tree
# out of both images.
#
# vdisk runs RUNS times (the best counts); genimage once, cut off after
# GENIMAGE_TIMEOUT seconds (a cut-off run prints the ratio as ">=").
# Measure on a quiet machine: the script prints the load average first.
#
# Usage: bench/build.sh
#        FILES=500 DIRS=5 RUNS=5 GENIMAGE_TIMEOUT=60 bench/build.sh
#        VDISK=/path/to/vdisk GENIMAGE=/path/to/genimage bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${FILES:-2000}
DIRS=${DIRS:-1}
BIG_MB=${BIG_MB:-64}
RUNS=${RUNS:-3}
GENIMAGE_TIMEOUT=${GENIMAGE_TIMEOUT:-600}
GENIMAGE=${GENIMAGE:-genimage}
for t in "$GENIMAGE" mkdosfs mcopy fsck.fat bc; do
	command -v "$t" >/dev/null || { echo "bench/build.sh: $t not installed (apt-get install genimage dosfstools mtools bc)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench/build.sh: GNU time not installed (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-buildbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
bin=${VDISK:-$work/vdisk}
[ -n "${VDISK:-}" ] || go build -o "$bin" ./cmd/vdisk
export MTOOLS_SKIP_CHECK=1 LC_ALL=C.UTF-8

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

# The root tree and the configuration.
root=$work/root
per=$(( (FILES + DIRS - 1) / DIRS ))
n=0
for d in $(seq -f %02g 1 "$DIRS"); do
	dir="$root/data/directory number $d"
	mkdir -p "$dir"
	for i in $(seq 1 "$per"); do
		n=$((n + 1))
		[ "$n" -le "$FILES" ] || break
		head -c 4096 /dev/urandom >"$dir/a file with a long name, number $(printf %04d "$n").dat"
	done
done
head -c $((BIG_MB << 20)) /dev/urandom >"$root/data/big file.bin"
size_mb=$(( (FILES * 8 / 1024) + BIG_MB * 5 / 4 + 16 ))
cat >"$work/genimage.cfg" <<EOF
image data.vfat {
	vfat {
		label = "DATA"
	}
	mountpoint = "/data"
	size = ${size_mb}M
}

image disk.img {
	hdimage {
		disk-signature = 0x12345678
	}
	partition data {
		partition-type = 0xC
		image = "data.vfat"
	}
}
EOF
mkdir -p "$work/input"
cat "$root"/data/*/* "$root/data/big file.bin" >/dev/null # page cache warm for both

# run NAME OUT CMD...: one build into $work/OUT, timed; sets $secs, $rss and $rc.
run() {
	local out=$work/$1 t0 t1
	shift
	rm -rf "$out" "$work/tmp"
	mkdir -p "$out"
	t0=$(date +%s.%N)
	rc=0
	/usr/bin/time -f %M -o "$work/rss" "$@" --config "$work/genimage.cfg" --rootpath "$root" --inputpath "$work/input" \
		--outputpath "$out" --tmppath "$work/tmp" >/dev/null 2>"$work/stderr" || rc=$?
	t1=$(date +%s.%N)
	secs=$(echo "$t1 - $t0" | bc -l)
	rss=$(tail -n 1 "$work/rss")
	case $rss in *[!0-9]* | "") rss=0 ;; esac
}

v= peak=0
for r in $(seq 1 "$RUNS"); do
	run out-vdisk "$bin" build
	[ "$rc" = 0 ] || { echo "vdisk build failed:" >&2; cat "$work/stderr" >&2; exit 1; }
	if [ -z "$v" ] || [ "$(echo "$secs < $v" | bc -l)" = 1 ]; then v=$secs; fi
	[ "$rss" -gt "$peak" ] && peak=$rss
done
fsck.fat -n "$work/out-vdisk/data.vfat" >/dev/null || { echo "fsck.fat -n failed on vdisk's volume" >&2; exit 1; }

run out-genimage timeout "$GENIMAGE_TIMEOUT" "$GENIMAGE"
g=$secs cut=
case $rc in
0) ;;
124) cut=">=" ;;
*) echo "genimage failed:" >&2; cat "$work/stderr" >&2; exit 1 ;;
esac

# Both hold the same tree.
if [ -z "$cut" ]; then
	mkdir "$work/gtree" "$work/vtree"
	mcopy -s -n -i "$work/out-genimage/data.vfat" '::*' "$work/gtree/"
	mcopy -s -n -i "$work/out-vdisk/data.vfat" '::*' "$work/vtree/"
	diff -r "$work/gtree" "$work/vtree" >/dev/null || { echo "genimage's and vdisk's volumes hold different trees" >&2; exit 1; }
	diff -r "$root/data" "$work/vtree" >/dev/null || { echo "vdisk's volume does not hold the root tree" >&2; exit 1; }
fi

printf '%-8s %11s %11s %9s\n' files vdisk genimage ratio
printf '%-8s %10.3fs %10.3fs %2s%6.0fx   (genimage/vdisk, %d files in %d directories + %d MiB; vdisk best of %d%s; target >= 20x; vdisk peak RSS %d MiB, target < 64)\n' \
	"$FILES" "$v" "$g" "$cut" "$(echo "$g / $v" | bc -l)" "$FILES" "$DIRS" "$BIG_MB" "$RUNS" "${cut:+, genimage cut off after ${GENIMAGE_TIMEOUT}s}" $((peak / 1024))
