package export_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// Large NBD reads of an image are MDL reads: the disk driver lends the
// page cache and nbdcopy gets the right bytes; every loan is given back
// (IRP_MN_COMPLETE_MDL). Under a filter that must see the data in the
// server's buffer (cow), the MDL read is refused and the read is made
// normally, so nbdcopy still gets the overlay's bytes.
func TestE2ELargeReadsAreLentAndGivenBack(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdcopy")
	testsupport.NeedTool(t, "sfdisk")
	for _, filters := range [][]string{{"trace"}, {"cow:overlay=OVERLAY", "trace"}} {
		dir := t.TempDir()
		gpt := testworld.GPT(t, dir)
		p := testsupport.Sfdisk(t, gpt)[1]
		data := testsupport.Random(int(p.Size), 0x5a, false)
		testsupport.WriteAt(t, gpt, data, p.Start)
		sys, _ := testworld.System(t, 4, false, gpt)
		cow := len(filters) == 2
		for _, f := range filters {
			if f == "cow:overlay=OVERLAY" {
				f = "cow:overlay=" + filepath.Join(dir, "overlay")
			}
			if _, err := sys.AddFilter(f); err != nil {
				t.Fatal(err)
			}
		}
		uri := testworld.ServeSystem(t, sys, false) + "/gpt@2"
		if cow {
			// Half the partition rewritten through the overlay.
			copy(data, testsupport.Random(len(data)/2, 0xa5, false))
			src := filepath.Join(dir, "src.bin")
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			testsupport.Must(t, "nbdcopy", "--flush", src, uri)
		}
		out := filepath.Join(dir, "out.bin")
		testsupport.Must(t, "nbdcopy", "--request-size=1048576", uri, out)
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("filters %v: nbdcopy read back other bytes than the partition holds", filters)
		}
		counts := map[string]int{}
		recs, _ := sys.Ring().Since(0)
		for _, r := range recs {
			if r.Layer == "disk" && r.Device != "" {
				counts[r.Operation+" "+r.Status]++
			}
		}
		lent, given := counts["IRP_MJ_READ/IRP_MN_MDL STATUS_SUCCESS"], counts["IRP_MJ_READ/IRP_MN_COMPLETE_MDL STATUS_SUCCESS"]
		refused := counts["IRP_MJ_READ/IRP_MN_MDL STATUS_NOT_SUPPORTED"]
		switch {
		case !cow && (lent == 0 || lent != given || refused != 0):
			t.Fatalf("no filter: %d MDL reads, %d given back, %d refused (%v)", lent, given, refused, counts)
		case cow && (lent != 0 || refused == 0 || counts["IRP_MJ_READ STATUS_SUCCESS"] == 0):
			t.Fatalf("cow: %d MDL reads lent, %d refused, %d plain reads (%v)", lent, refused, counts["IRP_MJ_READ STATUS_SUCCESS"], counts)
		}
	}
}
