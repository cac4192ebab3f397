// Package filter is what a legacy filter driver needs, so that writing one
// is short: a Legacy filter attaches to every file system's control device
// when the file system registers (including those registered before it),
// captures each mount's completion to attach a volume filter device to the
// new file system volume, passes every other IRP and fast I/O call through,
// and detaches through fast I/O detach when a dismount deletes the volume
// device beneath it. Unloading is last in, first out: it is refused while
// another device is attached above one of the filter's devices.
//
// Sub-packages hold the filter manager (fltmgr) and the built-in filters.
//
// Lock order: Legacy.mu is a leaf; it is never held while an IRP is sent,
// a device is attached, detached or deleted, or a callback runs.
package filter
