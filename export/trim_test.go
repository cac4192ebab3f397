package export_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// End-to-end: TRIM, WRITE_ZEROES and FLUSH from libnbd reach the image
// file as holes, zeros and fsyncs.

// TestE2ETrimZeroFlush sends TRIM and WRITE_ZEROES (with and without
// NO_HOLE) and FLUSH to a partition export with nbdsh: the ranges read as
// zeros, stat(2) and qemu-img map show the space freed (kept for NO_HOLE),
// and requests crossing the partition's end fail with EINVAL without
// touching the partition's tail or the next partition.
func TestE2ETrimZeroFlush(t *testing.T) {
	t.Parallel()
	py := testsupport.NeedNbdsh(t)
	testsupport.NeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	parts := testsupport.Sfdisk(t, gpt)
	p2, p3 := parts[1], parts[2]
	testsupport.WriteAt(t, gpt, testsupport.Random(6*testsupport.MiB, 1, false), p2.Start+testsupport.MiB)
	tail := testsupport.Random(64<<10, 2, false)
	testsupport.WriteAt(t, gpt, tail, p2.End()-64<<10)
	head3 := testsupport.Random(testsupport.MiB, 3, false)
	testsupport.WriteAt(t, gpt, head3, p3.Start)

	sys, _ := testworld.System(t, 0, false, gpt)
	uri := testworld.ServeSystem(t, sys, false) + "/gpt@2"
	_, noQemu := exec.LookPath("qemu-img") // without it, stat(2) alone shows the space freed
	qemu := noQemu == nil

	step := func(what string, op string, off, n int64, freed bool) {
		t.Helper()
		before := testsupport.Blocks(t, gpt)
		r := testworld.Nbdsh(t, py, uri, fmt.Sprintf(`
r = {"op": tryop(%s), "flush": tryop(h.flush)}
r["zeros"] = h.pread(%d, %d) == bytes(%d)
print(json.dumps(r))
`, op, n, off, n))
		testworld.Expect(t, what, r, map[string]any{"op": "ok", "flush": "ok", "zeros": true})
		after := testsupport.Blocks(t, gpt)
		// The file system may spend a block or two of extent tree on the hole.
		if freed && before-after < n/512-64 {
			t.Errorf("%s: st_blocks %d → %d, want about %d fewer", what, before, after, n/512)
		}
		if !freed && after < before {
			t.Errorf("%s (NO_HOLE): st_blocks %d → %d, space was freed", what, before, after)
		}
		if qemu && freed {
			if typ := testworld.TypeAt(testworld.QemuMap(t, gpt), p2.Start+off, n); typ != 3 {
				t.Errorf("%s: qemu-img map shows type %d at [%d, +%d), want a hole", what, typ, p2.Start+off, n)
			}
		}
	}
	step("trim", "h.trim, 2<<20, 1<<20", 1*testsupport.MiB, 2*testsupport.MiB, true)
	step("zero", "h.zero, 1<<20, 3<<20", 3*testsupport.MiB, testsupport.MiB, true)
	step("zero no-hole", "h.zero, 1<<20, 4<<20, nbd.CMD_FLAG_NO_HOLE", 4*testsupport.MiB, testsupport.MiB, false)
	step("zero fast", "h.zero, 1<<20, 5<<20, nbd.CMD_FLAG_FAST_ZERO", 5*testsupport.MiB, testsupport.MiB, true)
	if got := testsupport.ReadAt(t, gpt, p2.Start+6*testsupport.MiB, testsupport.MiB); !bytes.Equal(got, testsupport.Random(6*testsupport.MiB, 1, false)[5*testsupport.MiB:]) {
		t.Error("the data after the trimmed and zeroed ranges changed")
	}

	// Crossing the partition's end.
	r := testworld.Nbdsh(t, py, uri, `
h.set_strict_mode(0)
size = h.get_size()
r = {"size": size,
     "trim": tryop(h.trim, 131072, size - 65536),
     "zero": tryop(h.zero, 131072, size - 65536),
     "zero_nohole": tryop(h.zero, 131072, size - 65536, nbd.CMD_FLAG_NO_HOLE),
     "trim_beyond": tryop(h.trim, 4096, size),
     "write": tryop(h.pwrite, b"\xff" * 131072, size - 65536),
     "read": tryop(h.pread, 131072, size - 65536),
     "flush": tryop(h.flush)}
print(json.dumps(r))
`)
	testworld.Expect(t, "past the end", r, map[string]any{"size": p2.Size, "trim": "EINVAL", "trim_beyond": "EINVAL", "read": "EINVAL", "flush": "ok"})
	// Write-class requests beyond the end: the NBD spec recommends ENOSPC.
	for _, k := range []string{"write", "zero", "zero_nohole"} {
		if r[k] != "ENOSPC" && r[k] != "EINVAL" {
			t.Errorf("past the end: %s = %v, want ENOSPC (or EINVAL)", k, r[k])
		}
	}
	if !bytes.Equal(testsupport.ReadAt(t, gpt, p2.End()-64<<10, 64<<10), tail) {
		t.Error("refused requests changed the partition's last 64 KiB")
	}
	if !bytes.Equal(testsupport.ReadAt(t, gpt, p3.Start, testsupport.MiB), head3) {
		t.Error("refused requests changed the next partition")
	}
	// Up to the end exactly is allowed, and stops there.
	r = testworld.Nbdsh(t, py, uri, `
size = h.get_size()
r = {"trim": tryop(h.trim, 65536, size - 65536), "flush": tryop(h.flush)}
r["zeros"] = h.pread(65536, size - 65536) == bytes(65536)
print(json.dumps(r))
`)
	testworld.Expect(t, "trim to the end", r, map[string]any{"trim": "ok", "flush": "ok", "zeros": true})
	if !bytes.Equal(testsupport.ReadAt(t, gpt, p3.Start, testsupport.MiB), head3) {
		t.Error("a trim of partition 2's last 64 KiB changed the next partition")
	}
	if qemu {
		if typ := testworld.TypeAt(testworld.QemuMap(t, gpt), p3.Start, testsupport.MiB); typ != 0 {
			t.Errorf("qemu-img map: partition 3's data has type %d", typ)
		}
	}
}
