#!/usr/bin/env bash
# NBD benchmark: vdisk against nbdkit's file plugin and qemu-nbd, side by side,
# in one run.
#
# Builds vdisk, creates a sparse GPT image with one partition, fills part of
# the partition once, warms the page cache, then serves the same partition
# with "vdisk serve" (export NAME@1) and with "nbdkit file --filter=partition
# partition=1" and with qemu-nbd (a raw image with the partition's offset and
# size), and runs fio's nbd engine against each, alternating servers (and
# their order) round by round. Prints the median of each workload per
# server, the ratios vdisk/nbdkit and vdisk/qemu-nbd, the CPU each server
# spent per I/O, and
# vdisk's peak RSS. The ratios are a report: the script exits 0 whatever they
# are, and non-zero only if a server dies, fio fails or fio reports errors.
#
# Usage: bench/nbd.sh                       # 3 rounds x 4 workloads x 3 servers x 10 s
#        SECS=3 ROUNDS=1 bench/nbd.sh       # quick check of the script
#        VDISK_FLAGS="--workers 16" bench/nbd.sh
#
# Environment (defaults in brackets):
#   SECS [10]             seconds per fio run
#   ROUNDS [3]            rounds; each round runs every workload on both servers
#   WORKLOADS [all]       space-separated subset of: randread4k randwrite4k seqread1m randread4k-4conn
#   IMAGE_SIZE [4GiB]     size of the sparse image (one GPT partition fills it)
#   FILL [1GiB]           bytes of the partition filled with data; fio's --size (the region tested)
#   VDISK_FLAGS []        extra flags for "vdisk serve", e.g. "--workers 16"
#   FILTERED_FLAGS []     when set, a third server joins the rotation: vdisk with
#                         VDISK_FLAGS plus these (e.g. "--filter passthrough
#                         --filter passthrough"), reported as "filtered" with its
#                         ratio to plain vdisk (issue 6's filter-cost target)
#   VDISK_BIN []          use this vdisk binary instead of building one
#   NBDKIT_THREADS [16]   nbdkit --threads (its default: 16 per connection, parallel thread model)
#   NBDKIT_FLAGS []       extra nbdkit flags/plugin parameters
#   QEMU_NBD [1]          0: leave qemu-nbd out (it runs with --shared=8,
#                         --cache=writeback --aio=threads, its defaults otherwise)
#   VDISK_PORT, NBDKIT_PORT [free ports]
#   BENCH_DIR [$TMPDIR]   where the temporary directory (image, fio output) goes
#   KEEP [0]              1: keep the temporary directory (fio JSON, server logs)
#   PERF_OUT []           file: after the measurement, record a CPU profile of vdisk
#                         (perf record -g) during one extra PERF_WORKLOAD run
#   PERF_WORKLOAD [randread4k]
# Other variables (GOMAXPROCS, GOGC, ...) reach vdisk unchanged.
set -euo pipefail

SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-"randread4k randwrite4k seqread1m randread4k-4conn"}
IMAGE_SIZE=${IMAGE_SIZE:-4GiB}
FILL=${FILL:-1GiB}
VDISK_FLAGS=${VDISK_FLAGS:-}
FILTERED_FLAGS=${FILTERED_FLAGS:-}
VDISK_BIN=${VDISK_BIN:-}
NBDKIT_THREADS=${NBDKIT_THREADS:-16}
NBDKIT_FLAGS=${NBDKIT_FLAGS:-}
QEMU_NBD=${QEMU_NBD:-1}
KEEP=${KEEP:-0}
PERF_OUT=${PERF_OUT:-}
PERF_WORKLOAD=${PERF_WORKLOAD:-randread4k}

root=$(cd "$(dirname "$0")/.." && pwd)
start_time=$(date +%s)

for tool in fio nbdkit nbdinfo jq; do
	command -v "$tool" >/dev/null || { echo "nbd.sh: $tool not found" >&2; exit 2; }
done
[ -n "$VDISK_BIN" ] || command -v go >/dev/null || { echo "nbd.sh: go not found" >&2; exit 2; }
[ "$QEMU_NBD" = 0 ] || command -v qemu-nbd >/dev/null || { echo "nbd.sh: qemu-nbd not found (QEMU_NBD=0 leaves it out)" >&2; exit 2; }
[ -z "$PERF_OUT" ] || command -v perf >/dev/null || { echo "nbd.sh: PERF_OUT set but perf not found" >&2; exit 2; }

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/vdisk-bench.XXXXXX")
vdisk_pid="" nbdkit_pid="" qemu_pid="" filtered_pid="" sampler_pid=""

stop() { # stop PID: SIGTERM, then SIGKILL after 5 s
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$sampler_pid"
	stop "$vdisk_pid"
	stop "$nbdkit_pid"
	stop "$filtered_pid"
	stop "$qemu_pid"
	if [ "$KEEP" = 1 ]; then
		echo "kept $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	echo "nbd.sh: $*" >&2
	for f in "$work"/vdisk.log "$work"/nbdkit.log "$work"/filtered.log "$work"/qemu.log; do
		[ -s "$f" ] && { echo "--- $f (tail)" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 20000))
		port_free "$p" && { echo "$p"; return; }
	done
	die "no free port found"
}
VDISK_PORT=${VDISK_PORT:-$(pick_port)}
NBDKIT_PORT=${NBDKIT_PORT:-$(pick_port)}
[ "$VDISK_PORT" != "$NBDKIT_PORT" ] || NBDKIT_PORT=$(pick_port)
FILTERED_PORT=${FILTERED_PORT:-$(pick_port)}
QEMU_PORT=${QEMU_PORT:-$(pick_port)}
servers="vdisk nbdkit"
[ "$QEMU_NBD" = 0 ] || servers="$servers qemu"
[ -z "$FILTERED_FLAGS" ] || servers="$servers filtered"

# --- build, image, fill, warm ---------------------------------------------
if [ -z "$VDISK_BIN" ]; then
	echo "== building vdisk"
	(cd "$root" && go build -o "$work/vdisk" ./cmd/vdisk) || die "build failed"
	VDISK_BIN=$work/vdisk
fi
img=$work/bench.img
export_name=bench@1
"$VDISK_BIN" create "$img" --size "$IMAGE_SIZE" --table gpt --part rest:linux >/dev/null ||
	die "vdisk create failed"

# Servers live for the whole run; the wait for each checks the export answers.
wait_export() { # URI PID NAME
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$2" 2>/dev/null || die "$3 exited at start-up"
		nbdinfo --size "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "$3 did not answer on $1 within 10 s"
}

# shellcheck disable=SC2086 # VDISK_FLAGS/NBDKIT_FLAGS are word lists
start_servers() {
	"$VDISK_BIN" serve "$img" --listen "127.0.0.1:$VDISK_PORT" $VDISK_FLAGS >"$work/vdisk.log" 2>&1 &
	vdisk_pid=$!
	nbdkit -f --exit-with-parent -i 127.0.0.1 -p "$NBDKIT_PORT" --threads "$NBDKIT_THREADS" \
		--filter=partition file "file=$img" partition=1 $NBDKIT_FLAGS >"$work/nbdkit.log" 2>&1 &
	nbdkit_pid=$!
	wait_export "$vuri" "$vdisk_pid" "vdisk"
	wait_export "$kuri" "$nbdkit_pid" "nbdkit"
	if [ "$QEMU_NBD" != 0 ]; then
		# The partition's bytes, as vdisk and nbdkit export them.
		local start size
		read -r start size < <(sfdisk -J "$img" | jq -r '.partitiontable | (.sectorsize // 512) as $ss | .partitions[0] | "\(.start * $ss) \(.size * $ss)"')
		qemu-nbd -t -e 8 -b 127.0.0.1 -p "$QEMU_PORT" --cache=writeback --aio=threads --image-opts \
			"driver=raw,offset=$start,size=$size,file.driver=file,file.filename=$img,file.locking=off" >"$work/qemu.log" 2>&1 &
		qemu_pid=$!
		wait_export "$quri" "$qemu_pid" "qemu-nbd"
	fi
}
# The filtered vdisk serves a copy of the filled image: two vdisk serve
# cannot share one image (it is locked while served, as qemu locks it).
# nbdkit takes no lock, and qemu-nbd runs with file.locking=off.
# shellcheck disable=SC2086
start_filtered() {
	local fimg=$work/filtered/bench.img # the same export name, bench@1
	mkdir "$work/filtered"
	cp --sparse=always --reflink=auto "$img" "$fimg" || die "copying the image for the filtered server failed"
	cat "$fimg" >/dev/null
	"$VDISK_BIN" serve "$fimg" --listen "127.0.0.1:$FILTERED_PORT" $VDISK_FLAGS $FILTERED_FLAGS >"$work/filtered.log" 2>&1 &
	filtered_pid=$!
	wait_export "$furi" "$filtered_pid" "filtered vdisk"
}
vuri=nbd://127.0.0.1:$VDISK_PORT/$export_name
kuri=nbd://127.0.0.1:$NBDKIT_PORT/
furi=nbd://127.0.0.1:$FILTERED_PORT/$export_name
quri=nbd://127.0.0.1:$QEMU_PORT/
start_servers

vsize=$(nbdinfo --size "$vuri") ksize=$(nbdinfo --size "$kuri")
[ "$vsize" = "$ksize" ] || die "export sizes differ: vdisk $vsize, nbdkit $ksize"
[ "$QEMU_NBD" = 0 ] || [ "$(nbdinfo --size "$quri")" = "$vsize" ] || die "export sizes differ: vdisk $vsize, qemu-nbd $(nbdinfo --size "$quri")"

echo "== filling the first $FILL of the $(numfmt --to=iec "$vsize") partition through nbdkit"
timeout 600 fio --name=fill --ioengine=nbd --uri="$kuri" --rw=write --bs=1m --iodepth=8 \
	--size="$FILL" --output-format=json --output="$work/fill.json" >/dev/null ||
	die "fill failed"
[ "$(jq '[.jobs[].error] | add' "$work/fill.json")" = 0 ] || die "fio reported errors while filling"
sync
cat "$img" >/dev/null # warm the page cache (the holes read as zeros, quickly)
[ -z "$FILTERED_FLAGS" ] || start_filtered

# --- sampling --------------------------------------------------------------
status_kib() { # PID FIELD -> KiB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
cpu_ticks() { # PID -> utime+stime of all threads, in clock ticks
	# Fields after the "(comm)" so that a comm with spaces cannot shift them.
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	set -- $s
	echo $((${12} + ${13}))
}
clk_tck=$(getconf CLK_TCK)
# RSS of both servers every 0.2 s: "vdisk_kib nbdkit_kib" lines.
(
	while kill -0 "$vdisk_pid" 2>/dev/null; do
		echo "$(status_kib "$vdisk_pid" VmRSS) $(status_kib "$nbdkit_pid" VmRSS)"
		sleep 0.2
	done
) >"$work/rss.txt" &
sampler_pid=$!
rss_idle_before=$(status_kib "$vdisk_pid" VmRSS)

# --- workloads -------------------------------------------------------------
fio_args() { # WORKLOAD -> fio arguments
	case $1 in
	randread4k) echo "--rw=randread --bs=4k --iodepth=16 --numjobs=1" ;;
	randwrite4k) echo "--rw=randwrite --bs=4k --iodepth=16 --numjobs=1" ;;
	seqread1m) echo "--rw=read --bs=1m --iodepth=8 --numjobs=1" ;;
	randread4k-4conn) echo "--rw=randread --bs=4k --iodepth=16 --numjobs=4 --group_reporting" ;;
	*) die "unknown workload $1" ;;
	esac
}
unit() { [ "$1" = seqread1m ] && echo MiB/s || echo IOPS; }
for w in $WORKLOADS; do fio_args "$w" >/dev/null; done

run_fio() { # SERVER WORKLOAD ROUND -> appends "value cpu_us_per_io" to $work/res.SERVER.WORKLOAD
	local server=$1 w=$2 round=$3 uri pid out rc t0 t1 errs ios value
	case $server in
	vdisk) uri=$vuri pid=$vdisk_pid ;;
	filtered) uri=$furi pid=$filtered_pid ;;
	qemu) uri=$quri pid=$qemu_pid ;;
	*) uri=$kuri pid=$nbdkit_pid ;;
	esac
	out=$work/$w.$server.$round.json
	t0=$(cpu_ticks "$pid")
	# shellcheck disable=SC2046
	timeout $((SECS + 60)) fio --name="$w" --ioengine=nbd --uri="$uri" $(fio_args "$w") \
		--size="$FILL" --time_based --runtime="$SECS" --norandommap --randrepeat=0 \
		--output-format=json --output="$out" >/dev/null 2>"$out.err" && rc=0 || rc=$?
	t1=$(cpu_ticks "$pid")
	kill -0 "$pid" 2>/dev/null || die "$server died during $w (round $round)"
	[ "$rc" = 0 ] || { cat "$out.err" >&2; die "fio failed ($rc) on $server, $w, round $round"; }
	errs=$(jq '[.jobs[].error] | add' "$out")
	[ "$errs" = 0 ] || die "fio reported errors on $server, $w, round $round: $(jq -c '[.jobs[].error]' "$out")"
	ios=$(jq '[.jobs[] | .read.total_ios + .write.total_ios] | add' "$out")
	[ "$ios" -gt 0 ] || die "fio completed no I/O on $server, $w, round $round"
	if [ "$(unit "$w")" = MiB/s ]; then
		value=$(jq '[.jobs[] | .read.bw_bytes + .write.bw_bytes] | add / 1048576' "$out")
	else
		value=$(jq '[.jobs[] | .read.iops + .write.iops] | add' "$out")
	fi
	echo "$value $(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v n="$ios" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')" \
		>>"$work/res.$server.$w"
	printf '   round %-2s %-17s %-6s %10.1f %s\n' "$round" "$w" "$server" "$value" "$(unit "$w")"
}

nw=$(wc -w <<<"$WORKLOADS")
ns=$(wc -w <<<"$servers")
echo "== vdisk $VDISK_FLAGS on :$VDISK_PORT ($export_name), nbdkit file+partition --threads $NBDKIT_THREADS on :$NBDKIT_PORT"
[ "$QEMU_NBD" = 0 ] || echo "== qemu-nbd raw offset+size on :$QEMU_PORT"
[ -z "$FILTERED_FLAGS" ] || echo "== filtered: vdisk $VDISK_FLAGS $FILTERED_FLAGS on :$FILTERED_PORT"
echo "== $ROUNDS round(s) x $nw workload(s) x $ns servers x ${SECS}s: about $((ROUNDS * nw * ns * (SECS + 1)))s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_start=$(date +%s)
for ((round = 1; round <= ROUNDS; round++)); do
	for w in $WORKLOADS; do
		# Alternate which server goes first so that neither always follows the other.
		if ((round % 2)); then order=$servers; else order=$(tr ' ' '\n' <<<"$servers" | tac | xargs); fi
		for s in $order; do run_fio "$s" "$w" "$round"; done
	done
done
bench_secs=$(($(date +%s) - bench_start))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
sleep 1
rss_idle_after=$(status_kib "$vdisk_pid" VmRSS)
hwm=$(status_kib "$vdisk_pid" VmHWM)
khwm=$(status_kib "$nbdkit_pid" VmHWM)
stop "$sampler_pid"
sampler_pid=""
read -r rss_peak krss_peak < <(awk '$1 > a { a = $1 } $2 > b { b = $2 } END { print a + 0, b + 0 }' "$work/rss.txt")

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo
echo "vdisk vs nbdkit: median of $ROUNDS run(s) of ${SECS}s each, fio nbd engine, first $FILL of the partition"
echo "(a $IMAGE_SIZE sparse GPT image, page cache warm); CPU = server CPU time per I/O"
# ratio_table A B: per workload, the medians of servers A and B, A/B, and
# the CPU per I/O of each.
ratio_table() {
	printf '%-17s %6s %12s %12s %7s  %10s %10s\n' workload unit "$1" "$2" ratio "$1 CPU" "$2 CPU"
	local w a b ac bc
	for w in $WORKLOADS; do
		a=$(cut -d' ' -f1 "$work/res.$1.$w" | median)
		b=$(cut -d' ' -f1 "$work/res.$2.$w" | median)
		ac=$(cut -d' ' -f2 "$work/res.$1.$w" | median)
		bc=$(cut -d' ' -f2 "$work/res.$2.$w" | median)
		awk -v w="$w" -v u="$(unit "$w")" -v a="$a" -v b="$b" -v ac="$ac" -v bc="$bc" 'BEGIN {
			printf "%-17s %6s %12.1f %12.1f %7.2f  %8.1fus %8.1fus\n", w, u, a, b, (b > 0 ? a / b : 0), ac, bc }'
	done
}
ratio_table vdisk nbdkit
if [ "$QEMU_NBD" != 0 ]; then
	echo
	echo "vdisk vs qemu-nbd, same rounds"
	ratio_table vdisk qemu
fi
if [ -n "$FILTERED_FLAGS" ]; then
	echo
	echo "filtered ($FILTERED_FLAGS) vs plain vdisk, same rounds (target: >= 0.90)"
	ratio_table filtered vdisk
fi
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
echo
echo "vdisk RSS: peak $(mib "$rss_peak") sampled, VmHWM $(mib "$hwm"); idle $(mib "$rss_idle_before") before, $(mib "$rss_idle_after") after the load (target: < 100 MiB)"
echo "nbdkit RSS: peak $(mib "$krss_peak") sampled, VmHWM $(mib "$khwm")"
echo "load average: $load_after after the benchmark ($(nproc) CPUs); benchmark ${bench_secs}s, total $(($(date +%s) - start_time))s"

# --- optional CPU profile (not part of the measurement) -------------------
if [ -n "$PERF_OUT" ]; then
	echo
	echo "== perf record -g of vdisk during one ${SECS}s $PERF_WORKLOAD run -> $PERF_OUT"
	perf record -g -o "$PERF_OUT" -p "$vdisk_pid" -- sleep $((SECS + 2)) >"$work/perf.log" 2>&1 &
	perf_pid=$!
	sleep 0.5
	run_fio vdisk "$PERF_WORKLOAD" perf
	wait "$perf_pid" || die "perf record failed: $(cat "$work/perf.log")"
	echo "   inspect: perf report -i $PERF_OUT --no-children --sort symbol"
fi
exit 0
