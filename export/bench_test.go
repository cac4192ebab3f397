package export_test

import (
	"fmt"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/export"
)

// BenchmarkExportRead4K measures one NBD-sized read through an export's
// device stack (memory store, so the stack is what is measured), with and
// without pass-through disk filters: issue 6's cost of a filter layer.
func BenchmarkExportRead4K(b *testing.B) {
	for _, filters := range []int{0, 2} {
		b.Run(fmt.Sprintf("filters=%d", filters), func(b *testing.B) {
			sys := vdisk.New(vdisk.Options{})
			st, err := disk.NewMemStore(64 << 20)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sys.AddStore("bench", st, 512, false); err != nil {
				b.Fatal(err)
			}
			for range filters {
				if _, err := sys.AddFilter("passthrough"); err != nil {
					b.Fatal(err)
				}
			}
			exports, release, err := sys.Exports(false, export.ClaimAtOnce)
			if err != nil {
				b.Fatal(err)
			}
			defer release()
			dev := exports[0].Device
			buf := make([]byte, 4096)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := dev.ReadAt(nil, buf, int64(i%1024)*4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
