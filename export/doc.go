// Package export is the NBD adapter between package nbd and the System:
// Build lists a System's disks as NBD exports (`disk`, `disk@1`, …, and
// the default export ""), each a Device that turns NBD requests into IRPs
// sent to the top of the disk's or volume's stack (large reads as MDL
// reads of the image's page cache), with the client's address as
// requestor; Errno maps the NT status of a failed request to the NBD
// error number. Writable exports claim the volumes beneath them against
// an in-process mount (Claim).
//
// Lock order: Device.mu (its writers and refusals) is a leaf, held only
// to read or change those maps; the volume claims it takes are the volume
// driver's own.
package export
