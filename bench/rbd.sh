#!/usr/bin/env bash
# RBD benchmark: vdisk serving a Ceph RBD image against qemu-nbd serving the
# same image through QEMU's RBD driver, side by side, in one run.
#
# Starts a throwaway single-node cluster (scripts/ceph-micro.sh; or uses the
# one CEPH_CONF names), builds vdisk with -tags rbd,pacific, creates an image
# and fills it with `rbd bench` writes, then serves it read-only with
# "vdisk serve rbd:POOL/IMAGE --read-only" and with "qemu-nbd -r -f raw
# rbd:POOL/IMAGE" (librbd under both, with its default cache) and runs fio's
# nbd engine against each, one server at a time, alternating their order
# round by round. Prints the median of each workload per server, the ratio
# vdisk/qemu-nbd, the CPU each server spent per I/O and the load average.
# The ratios are a report: the script exits 0 whatever they are, and
# non-zero only if a server dies, fio fails or fio reports errors.
#
# Usage: bench/rbd.sh                        # 3 rounds x 2 workloads x 2 servers x 10 s
#        SECS=3 ROUNDS=1 bench/rbd.sh        # quick check of the script
#
# Environment (defaults in brackets):
#   SECS [10]            seconds per fio run
#   ROUNDS [3]           rounds; each runs every workload on both servers
#   WORKLOADS [all]      space-separated subset of: randread4k seqread1m randread4k-4conn
#   SIZE [1GiB]          image size, all of it written once; fio's --size
#   CEPH_CONF []         a running cluster's ceph.conf (pool POOL must exist)
#   POOL [rbd]           the pool of the image
#   VDISK_BIN []         a vdisk built with -tags rbd,pacific, instead of building one
#   VDISK_FLAGS []       extra flags for "vdisk serve"
#   KEEP [0]             1: keep the temporary directory (fio JSON, server logs)
set -euo pipefail

SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-"randread4k seqread1m randread4k-4conn"}
SIZE=${SIZE:-1GiB}
POOL=${POOL:-rbd}
VDISK_BIN=${VDISK_BIN:-}
VDISK_FLAGS=${VDISK_FLAGS:-}
KEEP=${KEEP:-0}

root=$(cd "$(dirname "$0")/.." && pwd)
for tool in fio qemu-nbd nbdinfo jq rbd; do
	command -v "$tool" >/dev/null || { echo "rbd.sh: $tool not found" >&2; exit 2; }
done

work=$(mktemp -d -t vdisk-rbd-bench.XXXXXX)
server_pid=""
cluster=""
image="bench-$$"
cleanup() {
	[ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
	# A cluster of the caller's keeps nothing of the run.
	[ -n "$cluster" ] || rbd rm --no-progress "$POOL/$image" >/dev/null 2>&1 || true
	[ -z "$cluster" ] || "$root/scripts/ceph-micro.sh" stop "$cluster"
	if [ "$KEEP" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

if [ -z "${CEPH_CONF:-}" ]; then
	cluster="$work/cluster"
	echo "== starting a throwaway Ceph cluster"
	CEPH_CONF=$("$root/scripts/ceph-micro.sh" start "$cluster" $$ 2>"$work/ceph-start.log") ||
		{ cat "$work/ceph-start.log" >&2; exit 1; }
fi
export CEPH_CONF

if [ -z "$VDISK_BIN" ]; then
	echo "== building vdisk -tags rbd,pacific"
	VDISK_BIN="$work/vdisk"
	(cd "$root" && go build -tags rbd,pacific -o "$VDISK_BIN" ./cmd/vdisk)
fi

spec="$POOL/$image"
bytes=$(numfmt --from=iec "${SIZE%iB}")
echo "== creating rbd:$spec ($SIZE) and writing all of it"
"$VDISK_BIN" create "rbd:$spec" --size "$SIZE" --table none --ceph-conf "$CEPH_CONF" >/dev/null
rbd bench --io-type write --io-size 4M --io-threads 4 --io-total "$bytes" --io-pattern seq "$spec" >"$work/fill.log"

free_port() {
	local port
	for ((;;)); do
		port=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
	done
}

# start_server NAME: starts the server, sets server_pid and uri.
start_server() {
	local port
	port=$(free_port)
	case $1 in
	vdisk)
		# shellcheck disable=SC2086
		"$VDISK_BIN" serve "rbd:$spec" --read-only --listen "127.0.0.1:$port" --ceph-conf "$CEPH_CONF" $VDISK_FLAGS 2>>"$work/vdisk.log" &
		uri="nbd://127.0.0.1:$port/$image"
		;;
	qemu-nbd)
		qemu-nbd -r -t -f raw -x "$image" --bind 127.0.0.1 --port "$port" --shared 8 --cache writeback "rbd:$spec:conf=$CEPH_CONF" 2>>"$work/qemu-nbd.log" &
		uri="nbd://127.0.0.1:$port/$image"
		;;
	esac
	server_pid=$!
	local i
	for ((i = 0; i < 300; i++)); do
		nbdinfo --size "$uri" >/dev/null 2>&1 && return 0
		kill -0 "$server_pid" 2>/dev/null || { echo "rbd.sh: $1 died; see $work/$1.log" >&2; KEEP=1; exit 1; }
		sleep 0.1
	done
	echo "rbd.sh: $1 does not answer on $uri" >&2
	exit 1
}

stop_server() {
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}

# cpu_ticks PID: user+system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_fio WORKLOAD SERVER ROUND: one fio run; records IOPS, MB/s, CPU per I/O.
run_fio() {
	local wl=$1 srv=$2 round=$3 args=()
	case $wl in
	randread4k) args=(--rw=randread --bs=4k --iodepth=16) ;;
	randread4k-4conn) args=(--rw=randread --bs=4k --iodepth=16 --numjobs=4 --group_reporting) ;;
	seqread1m) args=(--rw=read --bs=1M --iodepth=8) ;;
	*) echo "rbd.sh: unknown workload $wl" >&2; exit 2 ;;
	esac
	start_server "$srv"
	local out="$work/$wl-$srv-$round.json" t0 t1
	t0=$(cpu_ticks "$server_pid")
	if ! fio --name="$wl" --ioengine=nbd --uri="$uri" --size="$bytes" --time_based --runtime="$SECS" \
		--ramp_time=1 "${args[@]}" --output-format=json --output="$out" >/dev/null; then
		echo "rbd.sh: fio failed against $srv" >&2; KEEP=1; exit 1
	fi
	t1=$(cpu_ticks "$server_pid")
	stop_server
	local errs
	errs=$(jq '[.jobs[].error] | add' "$out")
	[ "$errs" = 0 ] || { echo "rbd.sh: fio reports errors against $srv ($out)" >&2; KEEP=1; exit 1; }
	local ios
	ios=$(jq '[.jobs[].read.total_ios] | add' "$out")
	jq -r --arg s "$srv" --arg w "$wl" --argjson ticks $((t1 - t0)) --argjson hz "$(getconf CLK_TCK)" --argjson ios "$ios" \
		'[$w, $s, ([.jobs[].read.iops] | add), ([.jobs[].read.bw_bytes] | add) / 1048576, ($ticks / $hz * 1e6 / ([$ios, 1] | max))] | @tsv' \
		"$out" >>"$work/results.tsv"
}

echo "== load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
: >"$work/results.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
	for wl in $WORKLOADS; do
		if ((r % 2)); then order="vdisk qemu-nbd"; else order="qemu-nbd vdisk"; fi
		for srv in $order; do
			run_fio "$wl" "$srv" "$r"
		done
	done
done
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# median of the values on stdin
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf '%-18s %12s %12s %10s %10s %8s %14s\n' workload "vdisk IOPS" "qemu IOPS" "vdisk MB/s" "qemu MB/s" ratio "CPU/IO v, q"
for wl in $WORKLOADS; do
	v=$(awk -F'\t' -v w="$wl" '$1 == w && $2 == "vdisk" {print $3}' "$work/results.tsv" | median)
	q=$(awk -F'\t' -v w="$wl" '$1 == w && $2 == "qemu-nbd" {print $3}' "$work/results.tsv" | median)
	vb=$(awk -F'\t' -v w="$wl" '$1 == w && $2 == "vdisk" {print $4}' "$work/results.tsv" | median)
	qb=$(awk -F'\t' -v w="$wl" '$1 == w && $2 == "qemu-nbd" {print $4}' "$work/results.tsv" | median)
	vc=$(awk -F'\t' -v w="$wl" '$1 == w && $2 == "vdisk" {print $5}' "$work/results.tsv" | median)
	qc=$(awk -F'\t' -v w="$wl" '$1 == w && $2 == "qemu-nbd" {print $5}' "$work/results.tsv" | median)
	printf '%-18s %12.0f %12.0f %10.1f %10.1f %8.2f %6.1f, %.1f µs\n' "$wl" "$v" "$q" "$vb" "$qb" "$(echo "$v / $q" | bc -l)" "$vc" "$qc"
done
