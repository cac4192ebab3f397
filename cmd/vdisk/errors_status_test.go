package main

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// TestExplainSaysWhatIsFullOrCorrupt: a directory that cannot take another
// entry is named (not "the volume is full"), and a volume whose writes are
// refused for corruption names the repair. The FSD tests show which status
// each case gets; the scripts fullroot and corrupt run them end to end.
func TestExplainSaysWhatIsFullOrCorrupt(t *testing.T) {
	vol := Address{Image: "d.img", Partition: 1}
	for _, c := range []struct {
		op, path string
		st       iomgr.Status
		want     string
	}{
		{"cp", "docs/a.txt", iomgr.StatusCannotMake,
			"cp d.img@1:/docs/a.txt: directory /docs is full: a FAT directory holds at most 65,536 entries, and a long name takes several (STATUS_CANNOT_MAKE)"},
		{"mkdir", "a/b/c", iomgr.StatusCannotMake,
			"mkdir d.img@1:/a/b/c: directory /a/b is full: a FAT directory holds at most 65,536 entries, and a long name takes several (STATUS_CANNOT_MAKE)"},
		{"cp", "x.txt", iomgr.StatusCannotMake,
			"cp d.img@1:/x.txt: the root directory is full (STATUS_CANNOT_MAKE)"},
		{"rm", "x.txt", iomgr.StatusVolumeDirty,
			"rm d.img@1:/x.txt: the file system is corrupt, so writes to it are refused: repair it with vdisk check --repair d.img@1 (STATUS_VOLUME_DIRTY)"},
	} {
		err := explain(c.op, vol, nil, &fs.PathError{Op: "open", Path: c.path, Err: c.st})
		if err.Error() != c.want {
			t.Errorf("got  %s\nwant %s", err, c.want)
		}
		if !errors.Is(err, c.st) {
			t.Errorf("%s: the status is lost", err)
		}
	}
}
