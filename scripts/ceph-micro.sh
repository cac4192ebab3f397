#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for vdisk's RBD tests: one monitor, one
# manager and one BlueStore OSD whose block device is a sparse file, a pool
# "rbd", no authentication, bound to loopback only. Everything it makes lives
# in the directory given; every daemon writes a pid file there, and "stop"
# ends them by those pids.
#
#   ceph-micro.sh start DIR [OWNER_PID]   make and start a cluster in DIR
#                                        (empty or missing); prints the
#                                        path of its ceph.conf. With
#                                        OWNER_PID, a watchdog stops the
#                                        cluster when that process ends,
#                                        however it ends.
#   ceph-micro.sh stop DIR               stop the daemons of DIR by pid
#
# Clients use the cluster with CEPH_CONF=DIR/ceph.conf (or -c / --ceph-conf)
# and the default client id "admin". For debugging a start: CEPH_MICRO_KEEP=1
# leaves a failed start's daemons running, CEPH_MICRO_DEBUG_OSD=N sets the
# OSD's log level; the logs are in DIR/log.
set -eEuo pipefail

usage() {
	echo "usage: $0 start DIR [OWNER_PID] | stop DIR" >&2
	exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2

daemons=(osd.0 mgr.x mon.a) # stop order: the OSD first, the monitor last

# stop ends each daemon by its pid file: TERM, then KILL for one that is
# still there after 10 s. A pid file whose process is gone is ignored.
stop() {
	local d pidfile pid i
	for d in "${daemons[@]}"; do
		pidfile="$dir/run/$d.pid"
		[ -s "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		[[ $pid =~ ^[0-9]+$ ]] || continue
		kill -TERM "$pid" 2>/dev/null || { rm -f "$pidfile"; continue; }
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$pidfile"
	done
	if [ -s "$dir/run/watchdog.pid" ]; then
		pid=$(cat "$dir/run/watchdog.pid")
		rm -f "$dir/run/watchdog.pid"
		# Not when stop is the watchdog itself finishing its job.
		[ "$pid" = "${BASHPID:-$$}" ] || kill -TERM "$pid" 2>/dev/null || true
	fi
}

# free_port prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	local port i
	for ((i = 0; i < 50; i++)); do
		port=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	echo "ceph-micro: no free port found" >&2
	return 1
}

# wait_for runs its arguments until they succeed, for at most $1 seconds.
wait_for() {
	local deadline=$((SECONDS + $1)) limit=$1 what=$2
	shift 2
	while ((SECONDS < deadline)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	echo "ceph-micro: $what did not happen within $limit s; logs are in $dir/log" >&2
	return 1
}

osd_up() {
	[ "$(ceph osd stat -f json | sed -n 's/.*"num_up_osds":\([0-9]*\).*/\1/p')" = 1 ]
}

start() {
	local owner=${1:-}
	mkdir -p "$dir"
	if [ -n "$(ls -A "$dir")" ]; then
		echo "ceph-micro: $dir is not empty" >&2
		exit 1
	fi
	dir=$(cd "$dir" && pwd)
	mkdir "$dir/run" "$dir/log" "$dir/mon" "$dir/mgr" "$dir/osd"

	local fsid port conf
	fsid=$(cat /proc/sys/kernel/random/uuid)
	port=$(free_port)
	conf="$dir/ceph.conf"
	cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $dir/run
admin socket = $dir/run/\$name.\$pid.asok
log file = $dir/log/\$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 1
mon warn on insecure global id reclaim allowed = false
# A client killed without closing its image keeps its watch on the image
# header this long; only then may another client break its exclusive lock.
osd client watch timeout = 10

[mon.a]
mon data = $dir/mon
pid file = $dir/run/mon.a.pid

[mgr.x]
mgr data = $dir/mgr
pid file = $dir/run/mgr.x.pid

[osd.0]
debug osd = ${CEPH_MICRO_DEBUG_OSD:-1}
osd data = $dir/osd
osd objectstore = bluestore
bluestore block path = $dir/osd.block
bluestore block create = true
bluestore block size = 10737418240
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mkfs = false
bluestore fsck on mount = false
osd memory target = 1073741824
pid file = $dir/run/osd.0.pid
EOF
	export CEPH_CONF="$conf"

	if [ -n "$owner" ]; then
		# The watchdog outlives this script (it is what stops the daemons
		# if the owner dies without calling stop) and holds none of its
		# output open, so a caller reading that output sees it end.
		# A stop ends it first.
		(
			while kill -0 "$owner" 2>/dev/null; do
				sleep 1
			done
			stop
		) </dev/null >/dev/null 2>&1 &
		echo $! >"$dir/run/watchdog.pid"
	fi
	# A start that fails part way leaves nothing running.
	[ -n "${CEPH_MICRO_KEEP:-}" ] || trap 'echo "ceph-micro: start failed (line $LINENO); logs are in $dir/log" >&2; stop' ERR

	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null
	ceph-mon -i a --mkfs --monmap "$dir/monmap" --keyring /dev/null
	ceph-mon -i a
	ceph-mgr -i x
	local osd osd_uuid
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	osd=$(ceph osd create "$osd_uuid")
	[ "$osd" = 0 ] || { echo "ceph-micro: new OSD got id $osd, not 0" >&2; false; }
	ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" 2>"$dir/log/osd-mkfs.err" || { cat "$dir/log/osd-mkfs.err" >&2; false; }
	ceph-osd -i 0
	wait_for 60 "the OSD coming up" osd_up
	ceph osd pool create rbd 8 8 >/dev/null
	rbd pool init rbd
	# The pool takes writes once its placement groups are active.
	wait_for 60 "a first write to pool rbd" rados -p rbd put ceph-micro-probe /dev/null
	rados -p rbd rm ceph-micro-probe
	trap - ERR
	echo "$conf"
}

case $cmd in
start) [ $# -le 3 ] || usage; start "${3:-}" ;;
stop) [ $# -eq 2 ] || usage; stop ;;
*) usage ;;
esac
