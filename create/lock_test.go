package create_test

import (
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/partition"
)

// TestImageLockReleasedAtOnceWhileProcessesStart: an image that
// CreateImage (which formats it through a System of its own) or a closed
// System held can be opened for writing at once in the same process, while
// other goroutines start processes (as parallel tests run fsck.fat and
// mtools). Closing the file alone left its lock to a child between its
// fork and its exec: AddImage right after CreateImage failed with "in use
// by another process that writes it". The garbage collector is off, so
// that no finalizer closes a store the code left open.
func TestImageLockReleasedAtOnceWhileProcessesStart(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	started := testsupport.StartProcesses(t)
	path := filepath.Join(t.TempDir(), "img.img")
	const rounds = 60
	for i := range rounds {
		if _, err := create.Image(path, create.Options{Size: 8 << 20, Table: partition.MBR, Overwrite: true,
			Parts: []partition.Spec{{Size: partition.Rest, Type: "fat12"}}}); err != nil {
			t.Fatalf("round %d: CreateImage: %v", i, err)
		}
		for _, readOnly := range []bool{false, true} {
			sys := vdisk.New(vdisk.Options{Workers: 1})
			_, err := sys.AddImage(path, readOnly)
			if cerr := sys.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("round %d: AddImage (read-only %v) right after the image was closed (%d processes started meanwhile): %v",
					i, readOnly, started(), err)
			}
		}
	}
	if started() == 0 {
		t.Fatal("no process started meanwhile: the test proves nothing")
	}
	t.Logf("%d rounds, %d processes started meanwhile", rounds, started())
}
