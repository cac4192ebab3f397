// Package vpb is the volume parameter block: the link between a storage
// volume's device object (the "real device") and the file system volume
// device object that mounted it.
//
// In NT the I/O manager consults a device's VPB on every open: if the VPB is
// mounted, the open goes to the file system's volume device (the top of its
// stack); if not, the mount sequence runs first. The VPB also carries what
// mount, verify, lock, unlock and dismount need: its flags, the reference
// count of file objects opened through it, the serial number and the label.
//
// The package is a leaf of the layering: it is generic over the device type so
// that it imports nothing of vdisk (iomgr instantiates it with *iomgr.Device).
//
// Lock order: a VPB's mount lock (MountLock) is taken before its state lock;
// the state lock is held only inside this package's methods and never while
// calling out.
package vpb
