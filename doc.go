// Package vdisk is the library façade of vdisk: a System wires one I/O
// manager with the disk, partition and volume drivers, the mount manager,
// the RAW and FAT file systems and the filters for a set of disk images,
// and offers what the CLI and embedders need on top of them:
//
//   - NBD exports (ExportDevice) whose requests travel as IRPs down the
//     device stacks, large reads as MDL reads of the image's page cache;
//   - Volume, an io/fs view of a mounted volume with write methods, whose
//     calls are IRPs (or fast I/O, where the file system can serve it);
//   - CreateImage and Format, Describe, Stack (text, Graphviz, JSON);
//   - the control API of a running server (ControlServer, ControlClient):
//     HTTP with JSON bodies on a unix socket only its user can reach.
//
// Layering (imports point downward only): cmd/vdisk → vdisk → nbd, filter,
// fsd/fat, mount → volume → partition → disk → vpb, iomgr.
//
// Lock order: ControlServer.mu (serialising mount, dismount, lock and
// filter changes) before System.mu; System.mu guards the image and filter
// lists and is never held while requests are sent; ExportDevice.mu (its
// writers and refusals) is a leaf.
package vdisk
