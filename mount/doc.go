// Package mount is the mount manager: file-system registration (with
// registration-change notifications that filters use to attach to every
// file system's control device), the mount sequence that lets a file system
// claim a volume through its VPB, verify, dismount, and the open path that
// turns a name into a file object on a mounted volume.
//
// The mount sequence follows NT: a FILE_SYSTEM_CONTROL/MOUNT_VOLUME IRP goes
// to the top of each registered file system's control device stack, in
// registration order (the raw file system last), until one claims the
// volume; STATUS_UNRECOGNIZED_VOLUME moves on to the next. The claiming
// file system creates its volume device and records it in the VPB.
//
// Lock order: a VPB's mount lock (vpb.MountLock), then Manager.mu; Manager.mu
// is never held while an IRP is sent or a notification runs.
package mount
