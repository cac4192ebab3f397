// Package vdisk is the library façade of vdisk, and only that. A System is
// one storage stack in the style of Windows NT: New loads an I/O manager
// (package iomgr) with the disk, partition and volume drivers, the mount
// manager, and the RAW and FAT file systems; AddImage opens a disk image
// and builds its devices (an Image: the disk, one partition device per
// table entry, one storage volume each); AddFilter loads the built-in
// filters. Volume gives a mounted volume as an io/fs.FS with write
// methods (Volume, File, RawVolume for its bytes): every call is an IRP
// (or fast I/O) through the volume's stack, so the filters see it.
//
//	sys := vdisk.New(vdisk.Options{Requestor: "me"})
//	defer sys.Close()
//	img, _ := sys.AddImage("disk.img", false)
//	vol, _ := sys.Volume(img, 1) // partition 1; 0 for a disk without a table
//	data, _ := vol.ReadFile("EFI/BOOT/BOOTX64.EFI")
//
// Everything else lives in a package of its own:
//
//   - export: NBD exports of a System (System.Exports builds them), NT status → errno
//   - control: the control API of a running server (HTTP+JSON, server and client)
//   - create, format: new images, and FAT file systems on volumes
//   - imageinfo: what `vdisk info` shows; stackview: the device stacks drawn
//   - filter/builtin: the built-in filters and their registry
//   - cmd/vdisk: the CLI, which parses operands (IMAGE@N:/path) and prints
//
// The layers and the rules of the I/O model are in docs/DESIGN.md.
//
// Lock order: System.mu guards the image and filter lists and is never held
// while requests are sent; the front ends' locks (control.Server.mu) come
// before it, and the drivers' own locks after it.
package vdisk
