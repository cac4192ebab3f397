package vdisk_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// TestFileIOTriesFastIOFirstAndTheMonitorShowsIt: File.ReadAt, WriteAt
// and Stat call the fast I/O routines at the top of the volume stack
// first; the monitor records those calls as FASTIO_* operations, apart
// from the IRPs sent when fast I/O was not possible (the first read of a
// page not yet cached). What was written that way is what mtools reads
// from the image after the dismount.
func TestFileIOTriesFastIOFirstAndTheMonitorShowsIt(t *testing.T) {
	testsupport.NeedTool(t, "mcopy")
	sys, v, path := testworld.FATSystem(t, vdisk.Options{Requestor: "test"}, "monitor")
	data := bytes.Repeat([]byte("fast I/O through the filter manager "), 4000) // 144,000 bytes
	if err := v.WriteFile("fast.bin", data); err != nil {
		t.Fatal(err)
	}
	f, err := v.OpenFile("fast.bin", os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(f, 0, int64(len(data))))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v, %d bytes, equal %v", err, len(got), bytes.Equal(got, data))
	}
	patch := []byte("PATCHED")
	if _, err := f.WriteAt(patch, 1000); err != nil {
		t.Fatal(err)
	}
	copy(data[1000:], patch)
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(data)) {
		t.Fatalf("stat: %v %v", fi, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	recs, _ := sys.Ring().Since(0)
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Layer == "volume" && r.Path == `\fast.bin` {
			seen[r.Operation] = true
			if r.Operation == "FASTIO_WRITE" && (r.Offset != 1000 || r.Length != int64(len(patch)) || !r.FastIO) {
				t.Errorf("fast write recorded as %+v", r)
			}
		}
	}
	for _, op := range []string{"FASTIO_READ", "FASTIO_WRITE", "FASTIO_QUERY_BASIC_INFO", "FASTIO_QUERY_STANDARD_INFO", "IRP_MJ_READ"} {
		if !seen[op] {
			for _, r := range recs {
				t.Log(r)
			}
			t.Fatalf("no %s on \\fast.bin in the trace", op)
		}
	}

	if err := v.Dismount(false); err != nil {
		t.Fatal(err)
	}
	parts := testsupport.Sfdisk(t, path)
	rc := filepath.Join(t.TempDir(), "mtoolsrc")
	os.WriteFile(rc, []byte("drive v: file=\""+path+"\" offset="+strconv.FormatInt(parts[0].Start, 10)+"\nmtools_skip_check=1\n"), 0o644)
	out := filepath.Join(t.TempDir(), "fast.bin")
	cmd := exec.Command("mcopy", "v:/fast.bin", out)
	cmd.Env = append(os.Environ(), "MTOOLSRC="+rc)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v %s", err, msg)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("mtools reads %d bytes, equal %v (%v)", len(got), bytes.Equal(got, data), err)
	}
}
