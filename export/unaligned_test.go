package export_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// End-to-end: requests that do not follow the block sizes, as clients
// send them.

// TestE2EUnalignedRequests: the block-size rules as clients meet them. A
// TRIM that is not aligned to the 512-byte minimum block is only a hint:
// qemu-io's `discard 400000 100000` (which sends a 384-byte TRIM for the
// unaligned head) succeeds, the whole blocks inside read as zeros and the
// bytes around them are untouched. A client that did not ask for block
// sizes (nbdsh with set_request_block_size(False)) is served at 1-byte
// granularity, as the NBD spec says it SHOULD be: unaligned reads, writes
// and zeroing land byte for byte, as the image file shows. A client that
// asked (libnbd's default) and then sends an unaligned read or write gets
// EINVAL.
func TestE2EUnalignedRequests(t *testing.T) {
	t.Parallel()
	py := testsupport.NeedNbdsh(t)
	testsupport.NeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	p2 := testsupport.Sfdisk(t, gpt)[1]
	const n = 2 * testsupport.MiB
	want := testsupport.Random(n, 11, false)
	testsupport.WriteAt(t, gpt, want, p2.Start)
	sys, _ := testworld.System(t, 0, false, gpt)
	uri := testworld.ServeSystem(t, sys, false) + "/gpt@2"
	check := func(t *testing.T, what string) {
		t.Helper()
		got := testsupport.ReadAt(t, gpt, p2.Start, n)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: the image differs from the expected bytes first at partition offset %d: %#x, want %#x", what, i, got[i], want[i])
			}
		}
	}
	zero := func(off, length int) { clear(want[off : off+length]) }

	t.Run("qemu-io discard", func(t *testing.T) {
		testsupport.NeedTool(t, "qemu-io")
		r := testsupport.Run(t, "qemu-io", "-f", "raw", uri, "-c", "discard 400000 100000")
		if r.Code != 0 || !strings.Contains(r.Stdout, "discard 100000/100000 bytes at offset 400000") {
			t.Fatalf("qemu-io discard 400000 100000: exit status %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		zero(400384, 499712-400384) // the whole blocks inside
		check(t, "after qemu-io's discard")
	})

	t.Run("nbdsh without block sizes", func(t *testing.T) {
		r := testsupport.Run(t, py, "-c", testworld.NbdshPrelude+fmt.Sprintf(`
h = nbd.NBD()
h.set_request_block_size(False)
h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_ALIGN)
h.connect_uri(%q)
r = {}
r["write"] = tryop(h.pwrite, b"\x5a" * 1000, 123457)
r["read"] = h.pread(777, 123000).hex()
r["write_small"] = tryop(h.pwrite, b"\x01\x02\x03", 1048575)
r["write_fua"] = tryop(h.pwrite, b"\x77" * 5000, 1300001, nbd.CMD_FLAG_FUA)
r["zero"] = tryop(h.zero, 1001, 300001)
r["zero_small"] = tryop(h.zero, 5, 600003)
r["zero_fast"] = tryop(h.zero, 100, 650001, nbd.CMD_FLAG_FAST_ZERO)
r["trim"] = tryop(h.trim, 100000, 700001)
r["flush"] = tryop(h.flush)
print(json.dumps(r))
`, uri))
		if r.Code != 0 {
			t.Fatalf("nbdsh: exit status %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
			t.Fatalf("nbdsh output: %v\n%s", err, r.Stdout)
		}
		copy(want[123457:], bytes.Repeat([]byte{0x5a}, 1000))
		if rd, _ := got["read"].(string); rd != fmt.Sprintf("%x", want[123000:123777]) {
			t.Errorf("unaligned read of 777 bytes at 123000: %.40s…, want %.40x…", rd, want[123000:123777])
		}
		copy(want[1048575:], []byte{1, 2, 3})
		copy(want[1300001:], bytes.Repeat([]byte{0x77}, 5000))
		zero(300001, 1001)
		zero(600003, 5)
		zero(700416, 799744-700416)
		// A fast zero that would need a read-modify-write is refused
		// (the client then writes the zeros itself).
		testworld.Expect(t, "unaligned requests", got, map[string]any{"write": "ok", "write_small": "ok", "write_fua": "ok",
			"zero": "ok", "zero_small": "ok", "zero_fast": "ENOTSUP", "trim": "ok", "flush": "ok"})
		check(t, "after nbdsh's unaligned requests")
	})

	t.Run("nbdsh with block sizes", func(t *testing.T) {
		got := testworld.Nbdsh(t, py, uri, `
h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_ALIGN)
r = {"min": h.get_block_size(nbd.SIZE_MINIMUM),
     "read": tryop(h.pread, 100, 1000),
     "write": tryop(h.pwrite, b"\xee" * 100, 1000),
     "zero": tryop(h.zero, 100, 1000),
     "trim": tryop(h.trim, 1000, 1000),
     "trim_small": tryop(h.trim, 300, 1600)}
print(json.dumps(r))
`)
		testworld.Expect(t, "unaligned requests after agreeing to block sizes", got, map[string]any{"min": json.Number("512"),
			"read": "EINVAL", "write": "EINVAL", "zero": "EINVAL", "trim": "ok", "trim_small": "ok"})
		zero(1024, 512) // the one whole block inside the trim
		check(t, "after refused unaligned requests and an unaligned trim")
	})
}
