// Package builtin holds vdisk's built-in filters and their registry, as
// nbdkit's filters/NAME/ do: each filter's file registers, from init, its
// name, kind, parameters, help text and constructors (Filter); the spec
// parser (`NAME[:key=value,...]`), the System's loader, the CLI's help and
// completion and the control API read that one table.
//
// The minifilters monitor, scan and readonly join the filter manager; the
// disk filters trace, writeprotect, faults, cow, crypt and passthrough
// attach to the storage stacks beneath the file systems (scan too, when
// narrowed with on=EXPORT).
//
// Lock order: each filter's own mutex is a leaf, but for the cow filter's
// fill stripes (cow.fill), which are taken in ascending order before its
// mutex and held while a read goes to the device below, which never calls
// back up into the filter.
package builtin
