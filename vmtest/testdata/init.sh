#!/bin/sh
# /init of the vmtest guest: a busybox system in an initramfs. It attaches
# the host's vdisk exports with nbd-client and with vdisk attach, mounts
# them with the kernel's vfat driver and checks them. Every check prints
# "@@VMTEST BEGIN|OK|FAIL NAME ..." on the serial console, where the Go test
# reads it; "@@VMTEST HASH NAME SHA256" hands the host what it must find
# after the VM is gone. The host side is in vm_test.go; the settings (ports,
# sizes) come from /vmtest.env, written by the test.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /mnt/esp /mnt/data /mnt/ro /mnt/espimg /mnt/cow /mnt/sdcard
mount -t tmpfs tmpfs /tmp
. /vmtest.env

say() { echo "@@VMTEST $*"; }
# must runs a command, reporting it as the failure of the running check if
# it fails. Every step of a check is `must ... || return 1`.
must() {
	"$@" >/tmp/must.out 2>&1 && return 0
	rc=$?
	say FAIL "$CUR" "exit $rc: $* :: $(tr '\n' ' ' </tmp/must.out | head -c 400)"
	return 1
}
# mustfail runs a command that has to fail, keeping its output in
# /tmp/mustfail.out.
mustfail() {
	if "$@" >/tmp/mustfail.out 2>&1; then
		say FAIL "$CUR" "succeeded but should not: $*"
		return 1
	fi
	return 0
}
# check runs one scenario function and reports it.
check() {
	CUR=$1
	say BEGIN "$1"
	dmesg -c >/dev/null
	if "$1"; then
		# The kernel's FAT driver complains about what it finds wrong
		# with a volume (dirty flag, bad chains, bad directory entries).
		if dmesg | grep -q 'FAT-fs'; then
			say FAIL "$1" "kernel: $(dmesg | grep 'FAT-fs' | head -3 | tr '\n' ' ')"
		else
			say OK "$1"
		fi
	fi
	# Leave nothing mounted or attached for the next check.
	for m in /mnt/*; do umount "$m" 2>/dev/null; done
	for d in /dev/nbd*; do nbd-client -d "$d" >/dev/null 2>&1; done
}
# manifest writes the sha256 of every file under the current directory.
manifest() { find . -type f -exec sha256sum {} + | sort -k 2; }
# attached waits (15 s at most: TCG on a loaded host is slow) until the
# kernel serves an NBD device.
attached() {
	i=0
	while [ ! -e "/sys/block/$1/pid" ] || [ "$(cat /sys/block/$1/size)" = 0 ]; do
		i=$((i + 1))
		[ $i -gt 300 ] && return 1
		usleep 50000
	done
}
nbd() { timeout 60 nbd-client "$HOST" "$1" "/dev/$2" -N "$3" -b 512; }

setup() {
	for m in $MODULES; do
		must insmod "/modules/$m.ko" || return 1
	done
	must ip link set lo up || return 1
	must ip link set eth0 up || return 1
	must ip addr add 10.0.2.15/24 dev eth0 || return 1
	must ip route add default via "$HOST" || return 1
	[ -b /dev/nbd0 ] || { say FAIL "$CUR" "no /dev/nbd0 after insmod nbd"; return 1; }
}

# The partition exports through nbd-client: the host's tree and manifest
# read back, then creations, renames, deletions and a large file.
nbdclient() {
	must nbd "$RW_PORT" nbd0 disk@1 || return 1
	must nbd "$RW_PORT" nbd1 disk@2 || return 1
	must test "$(blockdev --getss /dev/nbd0)" = 512 || return 1
	must test "$(blockdev --getsize64 /dev/nbd0)" = "$ESP_SIZE" || return 1
	must test "$(blockdev --getsize64 /dev/nbd1)" = "$DATA_SIZE" || return 1
	must mount -t vfat -o utf8 /dev/nbd0 /mnt/esp || return 1
	must mount -t vfat -o utf8 /dev/nbd1 /mnt/data || return 1
	for v in esp data; do
		cd /mnt/$v || return 1
		must sha256sum -c MANIFEST.sha256 || return 1
		must mkdir -p "guest A/ñandú dir/deeper/still deeper" || return 1
		echo "hello from the Linux vfat driver on $v" >"guest A/ñandú dir/deeper/notes – é 日本.txt" || return 1
		must touch "guest A/empty from linux" || return 1
		must mv "to rename.txt" "renamed by linux – ok.txt" || return 1
		must mv "dir to rename" "directory renamed by linux" || return 1
		must rm "to delete.txt" || return 1
		must rm -r "dir to delete" || return 1
		cd / || return 1
	done
	must dd if=/dev/urandom of=/mnt/data/guest-big.bin bs=1M count="$BIG_MB" || return 1
	must sync || return 1
	say HASH guest-big.bin "$(sha256sum /mnt/data/guest-big.bin | cut -d' ' -f1)"
	(cd /mnt/esp && manifest) >/tmp/esp.after-a || return 1
	(cd /mnt/data && manifest) >/tmp/data.after-a || return 1
	must umount /mnt/esp || return 1
	must umount /mnt/data || return 1
	must nbd-client -d /dev/nbd0 || return 1
	# vdisk detach works on what nbd-client (netlink) attached too.
	must vdisk detach /dev/nbd1 || return 1
	must test ! -e /sys/block/nbd1/pid || return 1
}

# The same partitions through vdisk attach (the static build): phase A's
# result must read back whole, then more changes.
vdiskattach() {
	vdisk attach "nbd://$HOST:$RW_PORT/disk@1" /dev/nbd2 2>/tmp/attach2.log &
	p2=$!
	vdisk attach "nbd://$HOST:$RW_PORT/disk@2" /dev/nbd3 2>/tmp/attach3.log &
	p3=$!
	attached nbd2 || { say FAIL "$CUR" "nbd2 not attached: $(cat /tmp/attach2.log)"; return 1; }
	attached nbd3 || { say FAIL "$CUR" "nbd3 not attached: $(cat /tmp/attach3.log)"; return 1; }
	must test "$(blockdev --getss /dev/nbd2)" = 512 || return 1
	must test "$(blockdev --getsize64 /dev/nbd2)" = "$ESP_SIZE" || return 1
	must test "$(blockdev --getsize64 /dev/nbd3)" = "$DATA_SIZE" || return 1
	must test "$(cat /sys/block/nbd3/ro)" = 0 || return 1
	# The export's flags reached the kernel (NBD_SET_FLAGS): it sends FLUSH.
	must test "$(cat /sys/block/nbd3/queue/write_cache)" = "write back" || return 1
	must mount -t vfat -o utf8 /dev/nbd2 /mnt/esp || return 1
	must mount -t vfat -o utf8 /dev/nbd3 /mnt/data || return 1
	for v in esp data; do
		cd /mnt/$v || return 1
		must sha256sum -c /tmp/$v.after-a || return 1
		echo "written through vdisk attach on $v" >"guest B — attach.txt" || return 1
		must mv "guest A" "guest A moved by B" || return 1
		cd / || return 1
	done
	must dd if=/dev/urandom of=/mnt/data/attach-big.bin bs=1M count=8 || return 1
	must sync || return 1
	say HASH attach-big.bin "$(sha256sum /mnt/data/attach-big.bin | cut -d' ' -f1)"
	must umount /mnt/esp || return 1
	must umount /mnt/data || return 1
	must vdisk detach /dev/nbd2 || return 1
	must vdisk detach /dev/nbd3 || return 1
	must wait $p2 || return 1
	must wait $p3 || return 1
	# SIGTERM detaches cleanly too, and attach says what it did.
	vdisk attach "nbd://$HOST:$RW_PORT/disk@2" /dev/nbd4 2>/tmp/attach4.log &
	p4=$!
	attached nbd4 || { say FAIL "$CUR" "nbd4 not attached: $(cat /tmp/attach4.log)"; return 1; }
	must kill -TERM $p4 || return 1
	must wait $p4 || return 1
	must test ! -e /sys/block/nbd4/pid || return 1
	must grep -q "attached to nbd://$HOST:$RW_PORT/disk@2" /tmp/attach4.log || return 1
	must grep -q "detached" /tmp/attach4.log || return 1
	# Errors a user would meet.
	mustfail vdisk attach "nbd://$HOST:$RW_PORT/no-such-export" /dev/nbd4 || return 1
	must grep -q 'no export "no-such-export"' /tmp/mustfail.out || return 1
	mustfail vdisk detach /dev/nbd4 || return 1
	must grep -q 'not attached' /tmp/mustfail.out || return 1
	mustfail vdisk attach "nbd://$HOST:$RW_PORT/disk@1" /dev/nbd99 || return 1
	must grep -q 'no device /dev/nbd99' /tmp/mustfail.out || return 1
}

# A read-only export (serve --read-only), attached with vdisk attach: the
# kernel is told it is read-only; reads work, writes fail.
readonly_export() {
	vdisk attach "nbd://$HOST:$RO_PORT/ro@2" /dev/nbd4 2>/tmp/attach4.log &
	p4=$!
	attached nbd4 || { say FAIL "$CUR" "nbd4 not attached: $(cat /tmp/attach4.log)"; return 1; }
	must test "$(cat /sys/block/nbd4/ro)" = 1 || return 1
	must mount -t vfat -o ro,utf8 /dev/nbd4 /mnt/ro || return 1
	cd /mnt/ro || return 1
	must sha256sum -c MANIFEST.sha256 || return 1
	cd / || return 1
	mustfail touch /mnt/ro/should-not-exist || return 1
	mustfail dd if=/dev/zero of=/dev/nbd4 bs=512 count=1 conv=fsync || return 1
	must umount /mnt/ro || return 1
	must vdisk detach /dev/nbd4 || return 1
	must wait $p4 || return 1
}

# The image built by examples/esp-image.sh, served read-only too.
espexample() {
	must nbd "$RO_PORT" nbd5 esp@1 || return 1
	must mount -t vfat -o ro,utf8 /dev/nbd5 /mnt/espimg || return 1
	must test -f /mnt/espimg/EFI/BOOT/BOOTX64.EFI || return 1
	cd /mnt/espimg || return 1
	must sha256sum -c /esp.sha256 || return 1
	cd / || return 1
	must umount /mnt/espimg || return 1
	must nbd-client -d /dev/nbd5 || return 1
}

# A copy-on-write disk filter in the server's path: the guest's writes
# survive a disconnect, a reconnect and a remount.
cow() {
	must nbd "$COW_PORT" nbd6 base@1 || return 1
	must mount -t vfat -o utf8 /dev/nbd6 /mnt/cow || return 1
	cd /mnt/cow || return 1
	must sha256sum -c MANIFEST.sha256 || return 1
	echo "into the overlay" >"cow – written.txt" || return 1
	must mkdir "cow dir" || return 1
	must rm "to delete.txt" || return 1
	cd / || return 1
	must umount /mnt/cow || return 1
	must nbd-client -d /dev/nbd6 || return 1
	must nbd "$COW_PORT" nbd6 base@1 || return 1
	must mount -t vfat -o utf8 /dev/nbd6 /mnt/cow || return 1
	must test "$(cat '/mnt/cow/cow – written.txt')" = "into the overlay" || return 1
	must test -d "/mnt/cow/cow dir" || return 1
	mustfail test -e "/mnt/cow/to delete.txt" || return 1
	must umount /mnt/cow || return 1
	must nbd-client -d /dev/nbd6 || return 1
}

# An SD card image vdisk build made from a genimage configuration, served
# read-only as a whole disk: the kernel reads its MBR (partition 1 where vdisk
# info puts it) and mounts the FAT partition, whose files match the inputs.
genimage() {
	must nbd "$RO_PORT" nbd7 sdcard || return 1
	attached nbd7 || { say FAIL "$CUR" "nbd7 not attached"; return 1; }
	# The kernel reads the partition table on this request, as it does
	# when a disk appears (nbd-client's connection may come first).
	must blockdev --rereadpt /dev/nbd7 || return 1
	i=0
	while [ ! -e /sys/block/nbd7/nbd7p1 ] && [ $i -lt 100 ]; do i=$((i + 1)); usleep 50000; done
	must test "$(cat /sys/block/nbd7/nbd7p1/start)" = "$SD_START" || return 1
	must test "$(cat /sys/block/nbd7/nbd7p1/size)" = "$SD_SIZE" || return 1
	must test -e /sys/block/nbd7/nbd7p2 || return 1
	must mount -t vfat -o ro,utf8 /dev/nbd7p1 /mnt/sdcard || return 1
	cd /mnt/sdcard || return 1
	must sha256sum -c /sdcard.sha256 || return 1
	must test "$(ls overlays | wc -l)" = 6 || return 1
	cd / || return 1
	must umount /mnt/sdcard || return 1
	must nbd-client -d /dev/nbd7 || return 1
}

CUR=setup
say BEGIN setup
if setup; then
	say OK setup
	for c in nbdclient vdiskattach readonly_export espexample cow genimage; do
		check $c
	done
fi
say DONE
sync
poweroff -f
