//go:build !race

package iomgr_test

import (
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// TestBlockIOSendAllocatesNothing: a caller that sends for a different
// requestor each time makes a BlockIO per call; neither it nor the IRP
// costs an allocation (the race detector's pools drop items at random, so
// the count is meaningful only without it).
func TestBlockIOSendAllocatesNothing(t *testing.T) {
	m := iomgr.NewManager()
	var got sent
	disk := newRecordingDisk(t, m, &got, []byte("lent"))
	attachFilter(t, m, newFilterDriver(m, "top"), disk, "top", nil)
	buf := make([]byte, 4096)
	requestors := []string{"nbd 127.0.0.1:1", "nbd 127.0.0.1:2"}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		b := iomgr.BlockIO{Device: disk, Requestor: requestors[i%2]}
		b.Send(iomgr.BlockRequest{Major: iomgr.MajorWrite, Buffer: buf, Offset: int64(i%8) * 4096, WriteThrough: i%2 == 0})
		ios, lent := b.Send(iomgr.BlockRequest{Major: iomgr.MajorRead, Minor: iomgr.MinorMDL, Length: 4, Offset: 0})
		b.Send(iomgr.BlockRequest{Major: iomgr.MajorRead, Minor: iomgr.MinorCompleteMDL, Buffer: lent, Length: int(ios.Information)})
		b.Send(iomgr.BlockRequest{Major: iomgr.MajorFlushBuffers})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round of sends, want 0", allocs)
	}
}
