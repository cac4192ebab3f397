package export_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// End-to-end: nbdcopy (libnbd) copies into and out of a partition
// export, and the bytes land at the partition's offset in the image file.

// TestE2ENbdcopyPartitionRoundTrip copies random data (with zero runs) into
// a partition export with nbdcopy and back: the copy is byte-identical, the
// data is in the image at the partition's offset (from sfdisk), and every
// byte outside the partition is unchanged.
func TestE2ENbdcopyPartitionRoundTrip(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdcopy")
	testsupport.NeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	parts := testsupport.Sfdisk(t, gpt)
	p := parts[1]
	// Neighbours full of data, the target full of stale bytes the copy must replace (zeros included).
	testsupport.WriteAt(t, gpt, testsupport.Random(int(parts[0].Size), 0x11, false), parts[0].Start)
	testsupport.WriteAt(t, gpt, testsupport.Random(int(parts[2].Size), 0x33, false), parts[2].Start)
	testsupport.WriteAt(t, gpt, bytes.Repeat([]byte{0xaa}, int(p.Size)), p.Start)
	outside := testsupport.HashOutside(t, gpt, p)

	sys, _ := testworld.System(t, 4, false, gpt)
	uri := testworld.ServeSystem(t, sys, false) + "/gpt@2"
	for i, args := range [][]string{
		{"--flush"},
		{"--flush", "--connections=4", "--requests=16", "--request-size=65536"},
	} {
		src := filepath.Join(dir, fmt.Sprintf("src%d.bin", i))
		data := testsupport.Random(int(p.Size), byte(i+1), true)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		testsupport.Must(t, "nbdcopy", append(args, src, uri)...)
		back := filepath.Join(dir, fmt.Sprintf("back%d.bin", i))
		testsupport.Must(t, "nbdcopy", uri, back)
		got, err := os.ReadFile(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round %d (%v): nbdcopy out differs from what nbdcopy put in", i, args)
		}
		if !bytes.Equal(testsupport.ReadAt(t, gpt, p.Start, p.Size), data) {
			t.Fatalf("round %d: the image at the partition's offset %d does not hold the data", i, p.Start)
		}
		if testsupport.HashOutside(t, gpt, p) != outside {
			t.Fatalf("round %d: bytes outside partition 2 [%d, %d) changed", i, p.Start, p.End())
		}
	}
}
