package iomgr_test

import (
	"fmt"
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// passThroughCompletion is the completion routine of a benchmark layer: the
// minimum a correct filter does.
func passThroughCompletion(dev *iomgr.Device, irp *iomgr.IRP, context any) iomgr.Status {
	if irp.PendingReturned {
		irp.MarkPending()
	}
	return iomgr.StatusSuccess
}

func passThroughDispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	ext := dev.Extension.(*filterExt)
	return iomgr.PassDownWith(irp, ext.lower, nil, passThroughCompletion, ext)
}

func completeDispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	return irp.Complete(iomgr.StatusSuccess, uint64(irp.CurrentStackLocation().Parameters.Read.Length))
}

// BenchmarkCallDriverPassThrough sends a 4 KiB read IRP through N
// pass-through layers (each passing it down with PassDownWith: a copy of
// its stack location and a completion routine) to a driver that completes
// it. ns/op divided by N is the cost of a layer; allocs/op must be 0.
func BenchmarkCallDriverPassThrough(b *testing.B) {
	for _, layers := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("layers=%d", layers), func(b *testing.B) {
			m := iomgr.NewManager()
			ddrv := m.CreateDriver(`\Driver\Bench`)
			ddrv.SetDispatchAll(completeDispatch)
			disk, _ := m.CreateDevice(ddrv, `\Device\Disk0`, iomgr.DeviceDisk, 0)
			disk.ClearFlags(iomgr.DeviceInitializing)
			fdrv := m.CreateDriver(`\Driver\PassThrough`)
			fdrv.SetDispatchAll(passThroughDispatch)
			top := disk
			for i := 0; i < layers; i++ {
				f, _ := m.CreateDevice(fdrv, "", iomgr.DeviceDisk, 0)
				ext := &filterExt{}
				f.Extension = ext
				lower, err := m.AttachDeviceToDeviceStack(f, disk)
				if err != nil {
					b.Fatal(err)
				}
				ext.lower = lower
				f.ClearFlags(iomgr.DeviceInitializing)
				top = f
			}
			buf := make([]byte, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, buf, int64(i&1023)*4096)
				if ios := iomgr.CallDriverAndWait(top, irp); ios.Status != iomgr.StatusSuccess {
					b.Fatal(ios.Status)
				}
				iomgr.FreeIRP(irp)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(layers), "ns/layer")
		})
	}
}
