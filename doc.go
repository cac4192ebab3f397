// Package vdisk is the library façade of vdisk: a System wires one I/O
// manager with the disk, partition and volume drivers for a set of disk
// images, and offers what the CLI and embedders need on top: NBD exports
// whose requests travel as IRPs down the device stacks.
//
// Layering (imports point downward only): cmd/vdisk → vdisk → nbd, filter,
// fsd/fat, mount → volume → partition → disk → vpb, iomgr.
//
// Lock order: System.mu guards the image list; it is never held while
// requests are sent.
package vdisk
