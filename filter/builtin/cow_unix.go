//go:build unix

package builtin

import (
	"os"
	"syscall"
)

// allocationUnit is the overlay's st_blksize: the file system's preferred
// I/O size, which is at least the unit it allocates in.
func allocationUnit(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blksize)
	}
	return 0
}
