// Package vmtest checks vdisk against a real Linux kernel: it boots a Debian
// kernel in QEMU with a busybox initramfs built at test time, and the guest
// attaches partitions that `vdisk serve` exports on the host, through
// nbd-client and through `vdisk attach`, mounts them with the kernel's vfat
// driver and reads and writes them. Every check is made on both sides: the
// guest verifies what vdisk wrote (sha256 manifests), and after the VM is
// gone the host reads the guest's changes back with vdisk and runs
// fsck.fat -n on every partition.
//
// The package has no code outside its tests; `go test ./vmtest/` (and so
// `go test ./...`) runs it. Scenarios, all in one VM boot to keep CI time
// down: a GPT image with a FAT32 ESP and a FAT16 data partition filled by
// `vdisk cp -r` (nbd-client, then `vdisk attach`), a read-only export, a
// copy-on-write disk filter in the server's path, and the EFI system
// partition image that examples/esp-image.sh builds.
//
// What it needs, installed by scripts/test.sh from Debian packages:
// qemu-system-x86_64, a static busybox (busybox-static), nbd-client (copied
// into the initramfs with the libraries ldd lists), dosfstools and mtools,
// and an unpacked linux-image-*-amd64 package in the cache directory
// ($VDISK_VM_CACHE, else $XDG_CACHE_HOME/vdisk-vm, else ~/.cache/vdisk-vm;
// $VDISK_VM_KERNEL names an unpacked package directly), from which the kernel and the modules nbd, fat, vfat, nls_cp437,
// nls_ascii, nls_utf8 and e1000 are taken. A missing prerequisite fails the
// test with what to install: CI must not pass without having booted the
// VM. A developer opts out with VDISK_VM=0.
//
// The guest runs with KVM when /dev/kvm can be opened and answers, and
// with TCG otherwise (VDISK_VM_ACCEL=tcg or kvm forces one); a KVM guest
// that prints nothing for 10 s, as under nested hypervisors whose /dev/kvm
// answers but runs nothing, is killed and the VM booted again with TCG. It reaches the
// host's loopback address as 10.0.2.2 through QEMU's user-mode network;
// the vdisk servers listen on 127.0.0.1 only. Every step is bounded: the
// VM by a deadline after which QEMU is killed, each guest network command
// by busybox timeout, each host command by a context.
package vmtest
