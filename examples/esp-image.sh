#!/bin/sh
# esp-image.sh builds a disk image holding an EFI system partition, the way
# a CI job would: no root, no loop device, no mkfs.fat or mcopy. vdisk
# writes the image; fsck.fat and mtools, which share no code with vdisk,
# check it. vdisk's own test suite runs this script and boots a Linux VM
# that mounts the result (vmtest/).
#
# Usage: esp-image.sh IMAGE BOOT_TREE [SIZE]
#   IMAGE      the disk image to write (GPT, one EFI system partition,
#              FAT32, label EFI); an existing file is overwritten
#   BOOT_TREE  a directory whose contents become the partition's root; it
#              must hold EFI/BOOT/BOOTX64.EFI, the path UEFI firmware boots
#              from removable media
#   SIZE       the image size (default 64MiB; a FAT32 ESP needs at least
#              about 33 MiB)
# Environment: VDISK names the vdisk binary (default: vdisk in PATH).
# Needs for the checks: fsck.fat (dosfstools), mcopy (mtools), jq.
set -eu
vdisk=${VDISK:-vdisk}
[ $# -ge 2 ] || { echo "usage: $0 IMAGE BOOT_TREE [SIZE]" >&2; exit 2; }
image=$1 tree=$2 size=${3:-64MiB}
[ -f "$tree/EFI/BOOT/BOOTX64.EFI" ] || { echo "$0: $tree has no EFI/BOOT/BOOTX64.EFI" >&2; exit 1; }

# 1. A sparse GPT disk whose only partition is the ESP, formatted FAT32.
"$vdisk" create "$image" --size "$size" --table gpt --part rest:esp:EFI --force >/dev/null
# 2. The boot tree, with long and Unicode names as they are.
"$vdisk" cp -r "$tree/." "$image@1:/"
"$vdisk" info "$image"

# 3. Checks by independent tools. Where the partition starts:
start=$("$vdisk" info --json "$image" | jq -e '.partitions[0].start')
length=$("$vdisk" info --json "$image" | jq -e '.partitions[0].size')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# fsck.fat reads a whole file and has no offset option: copy the partition out.
dd if="$image" of="$work/esp.fat" bs=1M iflag=skip_bytes,count_bytes skip="$start" count="$length" status=none
fsck.fat -n "$work/esp.fat"
# mtools reads the partition in place (IMAGE@@OFFSET); copy the tree back
# and compare it with the original, names included (mtools needs a UTF-8
# locale to write non-ASCII names).
mkdir "$work/back"
LC_ALL=C.UTF-8 MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$image@@$start" '::/*' "$work/back/"
diff -r "$tree" "$work/back"
echo "$image: ESP checked by fsck.fat and mtools"
