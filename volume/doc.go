// Package volume is the storage volume layer: one volume device object,
// `\Device\HarddiskVolumeK`, over each partition (or over a whole disk that
// has no partition table). Each volume device owns a VPB, through which the
// mount manager finds the file system that mounted it; requests sent to the
// volume device itself (a direct open, an NBD export, a file system's
// metadata I/O) are passed to the top of the partition's or disk's stack.
//
// A volume is either exported writable over NBD or mounted in process, never
// both: two writers would corrupt it. Extension.AcquireExportWrite and
// AcquireMount enforce that.
//
// Lock order: Driver.mu, then an Extension's mu; neither is held while
// requests are sent.
package volume
