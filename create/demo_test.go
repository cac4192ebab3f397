package create_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// The demo image that serve --demo serves holds two FAT volumes that
// fsck.fat passes and mtools reads, with the demo's files in them.
func TestDemoImageHoldsCleanVolumesWithFiles(t *testing.T) {
	t.Parallel()
	fsck := testsupport.NeedTool(t, "fsck.fat")
	mtype := testsupport.NeedTool(t, "mtype")
	dir := t.TempDir()
	path, err := create.Demo(dir)
	if err != nil {
		t.Fatal(err)
	}
	parts := testsupport.Sfdisk(t, path)
	if len(parts) != 2 {
		t.Fatalf("%d partitions, want 2", len(parts))
	}
	for i, p := range parts {
		vol := filepath.Join(dir, "part.img")
		if err := os.WriteFile(vol, testsupport.ReadAt(t, path, p.Start, p.Size), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(fsck, "-n", vol).CombinedOutput(); err != nil {
			t.Fatalf("fsck.fat -n partition %d: %v\n%s", i+1, err, out)
		}
	}
	for _, c := range []struct {
		part int
		path string
		want string
	}{
		{0, "::/EFI/BOOT/README.TXT", "EFI system partition"},
		{1, "::/hello.txt", "Hello from the vdisk demo image."},
		{1, "::/Ünïcödé – naïve café.txt", "UTF-16"},
		{1, "::/docs/nested/deeper/leaf.txt", "nest"},
	} {
		cmd := exec.Command(mtype, "-i", path+"@@"+strconv.FormatInt(parts[c.part].Start, 10), c.path)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) {
			t.Fatalf("mtype %s: %v\n%s", c.path, err, out)
		}
	}
}
