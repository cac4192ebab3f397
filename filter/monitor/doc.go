// Package monitor is vdisk's Filemon: a minifilter that records every file
// operation on the volumes it is attached to, and a disk-level trace for the
// storage stacks beneath, both into one bounded ring of Records. Each record
// has a sequence number; when the ring overflows the oldest records are
// dropped, and a reader sees the gap in the numbers.
//
// Lock order: Ring.mu is a leaf.
package monitor
