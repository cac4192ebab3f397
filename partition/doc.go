// Package partition is the partition-table layer that sits beneath volumes,
// as partmgr and the partition FDOs do in the NT storage stack.
//
// The codec in this package reads and writes MBR (primary, extended and
// logical partitions) and GPT tables into a neutral model, Table, so the layers
// above never see on-disk layouts. Everything read is validated: a malformed
// table is an error wrapping ErrCorrupt, never a panic or an unbounded
// allocation, because disk images come from anywhere. Partition device
// objects, which translate and bound offsets for the volumes above them, build
// on this API.
package partition
