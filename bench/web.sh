#!/usr/bin/env bash
# Web view benchmark: what an open page costs the server. Runs
# web.TestWebViewThroughputReport: fio randwrite 4k QD16 against
# "vdisk serve --filter trace --http", alternating runs without the page and
# with the page showing the live trace table in headless Chromium, and
# reports both throughputs, their ratio and how far the page's table lags
# behind the server. It reports; it exits non-zero only if something fails
# to run.
#
# The machine is shared: it first waits (up to MAX_WAIT seconds) until the
# 1-minute load average is below MAX_LOAD, and prints the load it started
# and ended with.
#
# Usage: bench/web.sh
#        SECS=5 ROUNDS=1 bench/web.sh    # quick check of the script
#
# Environment (defaults in brackets):
#   SECS [20]        seconds per fio run
#   ROUNDS [2]       rounds of (without, with) runs, the order alternating
#   MAX_LOAD [1.5]   wait for a 1-minute load average below this
#   MAX_WAIT [1800]  seconds to wait for it; then run anyway, saying so
#   TAB [trace]      the tab the page shows: trace, blocks or stacks
#   RATE []          fio's --rate_iops: a fixed load, to compare the browser's
#                    CPU between versions of the page whatever else runs
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-20}
ROUNDS=${ROUNDS:-2}
MAX_LOAD=${MAX_LOAD:-1.5}
MAX_WAIT=${MAX_WAIT:-1800}

for tool in fio chromium; do
	command -v "$tool" >/dev/null || { echo "web.sh: $tool not found" >&2; exit 2; }
done
waited=0
while :; do
	load=$(cut -d' ' -f1 /proc/loadavg)
	awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' && break
	if [ "$waited" -ge "$MAX_WAIT" ]; then
		echo "web.sh: load average still $load after ${MAX_WAIT} s: measuring anyway (the figures are less reliable)" >&2
		break
	fi
	sleep 10
	waited=$((waited + 10))
done
echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (waited ${waited} s)"
VDISK_WEB_BENCH=1 VDISK_WEB_BENCH_SECS=$SECS VDISK_WEB_BENCH_ROUNDS=$ROUNDS VDISK_WEB_BENCH_TAB=${TAB:-trace} VDISK_WEB_BENCH_RATE=${RATE:-} \
	go test -count=1 -run '^TestWebViewThroughputReport$' -v -timeout 30m ./web/ 2>&1 |
	grep -E 'throughput_test|^(--- |ok|FAIL|PASS)'
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
