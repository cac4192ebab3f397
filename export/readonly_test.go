package export_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/volume"
)

// End-to-end: read-only exports, and writable exports over a read-only
// disk, refuse writes with EPERM and leave the image as it was.

// TestE2EReadOnly: with the read-only option nbdinfo reports read-only
// exports, nbdcopy and nbdsh writes fail with EPERM, and the image does not
// change. An export that NBD leaves writable over a read-only disk gets
// EPERM from the disk driver (STATUS_MEDIA_WRITE_PROTECTED through Errno).
func TestE2EReadOnly(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdinfo")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	testsupport.WriteAt(t, gpt, testsupport.Random(4*testsupport.MiB, 3, true), 20*testsupport.MiB)
	sum := testsupport.HashFile(t, gpt)

	sys, imgs := testworld.System(t, 0, true, gpt)
	img := imgs[0]
	if !img.ReadOnly {
		t.Fatal("image added read-only is not ReadOnly")
	}
	// Asking for writable exports of a read-only image gives read-only ones and claims nothing.
	exports, release, err := sys.Exports(false, export.ClaimAtOnce)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exports {
		if !e.ReadOnly {
			t.Errorf("export %q of a read-only image is writable", e.Name)
		}
	}
	for _, v := range img.Volumes {
		ext := v.Extension.(*volume.Extension)
		if err := ext.AcquireMount(); err != nil {
			t.Errorf("read-only exports claimed %v: %v", v, err)
		} else {
			ext.ReleaseMount()
		}
	}
	uri := testworld.Serve(t, exports, release)

	for _, e := range testworld.Nbdinfo(t, "--list", uri) {
		if !e.ReadOnly || e.CanTrim || e.CanZero || e.CanFUA {
			t.Errorf("nbdinfo: export %q: %+v", e.Name, e)
		}
	}
	if e := testworld.Nbdinfo(t, uri+"/gpt@2"); len(e) != 1 || !e[0].ReadOnly {
		t.Errorf("nbdinfo gpt@2: %+v", e)
	}

	// NBD-writable exports over the read-only disk and one of its volumes:
	// writes reach the stack and the refusal comes from the disk driver
	// (STATUS_MEDIA_WRITE_PROTECTED, which Errno maps to EPERM).
	devURI := testworld.Serve(t, []nbd.Export{
		{Name: "disk", Device: &export.Device{Device: img.Disk, Length: img.Disk.Extension.(*disk.Disk).Size}, MinBlock: 512},
		{Name: "vol", Device: &export.Device{Device: img.Volumes[1], Length: img.Volumes[1].Extension.(*volume.Extension).Size}, MinBlock: 512},
	}, nil)

	t.Run("nbdcopy", func(t *testing.T) {
		testsupport.NeedTool(t, "nbdcopy")
		src := filepath.Join(t.TempDir(), "src.bin")
		if err := os.WriteFile(src, testsupport.Random(16*testsupport.MiB, 4, false), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := testsupport.Run(t, "nbdcopy", src, uri+"/gpt@2"); r.Code == 0 || !strings.Contains(r.Stderr, "read-only") {
			t.Errorf("nbdcopy into a read-only export: exit status %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if r := testsupport.Run(t, "nbdcopy", src, devURI+"/vol"); r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), syscall.EPERM.Error()) {
			t.Errorf("nbdcopy into an NBD-writable export of a read-only volume: exit status %d, want EPERM\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})

	t.Run("nbdsh", func(t *testing.T) {
		py := testsupport.NeedNbdsh(t)
		script := `
h.set_strict_mode(0)
r = {"ro": h.is_read_only(),
     "write": tryop(h.pwrite, b"x" * 4096, 0),
     "fua": tryop(h.pwrite, b"x" * 4096, 4096, nbd.CMD_FLAG_FUA),
     "trim": tryop(h.trim, 65536, 0),
     "zero": tryop(h.zero, 65536, 0),
     "flush": tryop(h.flush),
     "read": tryop(h.pread, 4096, 0)}
print(json.dumps(r))
`
		for _, name := range []string{"gpt", "gpt@1", "gpt@3"} {
			testworld.Expect(t, name, testworld.Nbdsh(t, py, uri+"/"+name, script), map[string]any{
				"ro": true, "write": "EPERM", "fua": "EPERM", "trim": "EPERM", "zero": "EPERM", "flush": "ok", "read": "ok"})
		}

		for _, name := range []string{"disk", "vol"} {
			testworld.Expect(t, "NBD-writable "+name, testworld.Nbdsh(t, py, devURI+"/"+name, script), map[string]any{
				"ro": false, "write": "EPERM", "fua": "EPERM", "trim": "EPERM", "zero": "EPERM", "flush": "ok", "read": "ok"})
		}
	})

	if testsupport.HashFile(t, gpt) != sum {
		t.Fatal("the read-only image changed")
	}
}
