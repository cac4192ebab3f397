// Package create makes new disk images, as `vdisk create` and `vdisk serve
// --demo` do: Image writes a sparse image file with a partition table
// (package partition) and formats its FAT-typed partitions (package format,
// through a System of its own); Demo makes the built-in demo image and
// fills it with a few files through the System's Volume. It holds no lock;
// the image file is locked while the System has it open.
package create
