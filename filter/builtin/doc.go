// Package builtin holds vdisk's built-in filters and the parser of their
// specs (`NAME[:key=value,...]`): the minifilters monitor, scan and
// readonly, and the disk filters trace, writeprotect, faults, cow and crypt,
// which attach to the storage stacks beneath the file systems.
//
// Lock order: each filter's own mutex is a leaf.
package builtin
