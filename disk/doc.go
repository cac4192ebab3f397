// Package disk is the bottom of vdisk's storage stacks: backing stores (an
// image file, memory, a Ceph RBD image, any go-nbd backend) and the disk
// driver that turns each store into a disk device object,
// `\Device\HarddiskN\DR0`.
//
// The RBD store (RBDStore, `rbd:POOL/IMAGE[@SNAP]`) is cgo over librbd and
// is compiled in only with -tags rbd,pacific (Ceph 16's librbd; see
// store_rbd.go); the default build stays pure Go and answers
// ErrRBDNotCompiled. A writable RBD store holds the image's exclusive lock,
// so one image has one writer across all machines; its tests run against a
// throwaway cluster that scripts/ceph-micro.sh starts.
//
// The disk driver handles READ, WRITE (with write-through for NBD's FUA),
// FLUSH_BUFFERS and the disk I/O controls (geometry, length, partition
// information, writability, and the data-set management control that
// carries TRIM, zeroing and allocation queries). Misaligned or out-of-range
// requests fail with STATUS_INVALID_PARAMETER. With workers configured,
// requests are marked pending and completed from a bounded pool of
// goroutines, so many are in flight at once; without, they complete in the
// caller's goroutine.
//
// An image file is locked while a FileStore has it open, the way qemu locks
// images (lock.go): shared by readers, exclusive to a writer, so that two
// processes never write one image and nothing reads it while another writes.
//
// Everything above (partitions, volumes, file systems, NBD) reaches a store
// only through IRPs sent to the top of a disk's device stack, so disk filters
// attached there see all of it.
//
// Lock order: Driver.mu guards the disk list and is never held while a store
// is accessed. Stores synchronise themselves (RBDStore.mu is read-held by
// each request and write-held by Close, and is taken by nothing else).
// Closing the driver takes no lock: it refuses new requests, waits for the
// queued ones to run and only then closes the stores.
package disk
