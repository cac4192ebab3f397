// Package builtin holds vdisk's built-in filters and the parser of their
// specs (`NAME[:key=value,...]`): the minifilters monitor, scan and
// readonly, and the disk filters trace, writeprotect, faults, cow and crypt,
// which attach to the storage stacks beneath the file systems.
//
// Lock order: each filter's own mutex is a leaf, but for the cow filter's
// fill stripes (COW.fill), which are taken in ascending order before its
// mutex and held while a read goes to the device below, which never calls
// back up into the filter.
package builtin
