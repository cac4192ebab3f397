//go:build !unix

package builtin

import "os"

// allocationUnit is unknown here: the overlay's blocks are the minimum.
func allocationUnit(os.FileInfo) int64 { return 0 }
