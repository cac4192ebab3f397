package disk

import "testing"

// TestFileStoreZeroNoHoleWithoutZeroRange runs the ZeroNoHole check down the
// path for file systems that punch holes but have no FALLOC_FL_ZERO_RANGE
// (tmpfs, for one): the store punches and then preallocates. The test
// makes the store believe zero-range is missing, as it would after the
// file system's first EOPNOTSUPP, so the path runs on whatever file system
// holds TMPDIR.
func TestFileStoreZeroNoHoleWithoutZeroRange(t *testing.T) {
	s := testZeroNoHole(t, t.TempDir(), func(s *FileStore) { s.noZeroRange.Store(true) })
	if s.noPunch.Load() || s.noPrealloc.Load() {
		t.Fatalf("punch (missing %v) or preallocate (missing %v) failed: the punch-and-preallocate path did not run", s.noPunch.Load(), s.noPrealloc.Load())
	}
}
