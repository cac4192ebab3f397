package export_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// End-to-end: qemu-img compare reads an export as qemu's NBD client does.

// TestE2EQemuImgCompare: qemu-img compare finds an export identical to a
// reference file (exit 0) and notices one changed byte (exit 1).
func TestE2EQemuImgCompare(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "qemu-img")
	testsupport.NeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	p := testsupport.Sfdisk(t, gpt)[0]
	data := testsupport.Random(int(p.Size), 5, true)
	testsupport.WriteAt(t, gpt, data, p.Start)
	ref := filepath.Join(dir, "ref.bin")
	if err := os.WriteFile(ref, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sys, _ := testworld.System(t, 0, false, gpt)
	uri := testworld.ServeSystem(t, sys, true)

	for _, c := range []struct{ file, uri string }{{ref, uri + "/gpt@1"}, {gpt, uri + "/gpt"}, {gpt, uri + "/"}} {
		if r := testsupport.Run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", c.file, c.uri); r.Code != 0 {
			t.Errorf("qemu-img compare %s %s: exit status %d, want 0\n%s%s", c.file, c.uri, r.Code, r.Stdout, r.Stderr)
		}
	}
	const at = 5*testsupport.MiB + 123
	testsupport.WriteAt(t, ref, []byte{data[at] ^ 0x01}, at)
	r := testsupport.Run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", ref, uri+"/gpt@1")
	if r.Code != 1 || !strings.Contains(r.Stdout, "mismatch") {
		t.Errorf("qemu-img compare after changing byte %d: exit status %d, want 1\n%s%s", at, r.Code, r.Stdout, r.Stderr)
	}
}
