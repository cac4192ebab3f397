package disk

import (
	"os"
	"syscall"
	"testing"
)

// TestFileStoreZeroNoHoleTmpfs runs the same check on tmpfs, which punches
// holes but has no FALLOC_FL_ZERO_RANGE, so the store punches and then
// preallocates.
func TestFileStoreZeroNoHoleTmpfs(t *testing.T) {
	const tmpfsMagic = 0x01021994
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		t.Skip("/dev/shm is not a tmpfs")
	}
	dir, err := os.MkdirTemp("/dev/shm", "vdisk-test-")
	if err != nil {
		t.Skipf("/dev/shm is not writable: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := testZeroNoHole(t, dir)
	if !s.noZeroRange.Load() {
		t.Log("this tmpfs has FALLOC_FL_ZERO_RANGE; the punch-and-preallocate path went untested")
	}
}
