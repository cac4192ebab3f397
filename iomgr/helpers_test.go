package iomgr_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// recorder collects events from drivers under test, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// filterExt is the device extension of the test filter driver.
type filterExt struct {
	name  string
	lower *iomgr.Device
	rec   *recorder
}

// filterCompletion records which device it was called for and propagates pending.
func filterCompletion(dev *iomgr.Device, irp *iomgr.IRP, context any) iomgr.Status {
	ext := context.(*filterExt)
	name := "<nil>"
	if dev != nil {
		name = dev.Extension.(*filterExt).name
	}
	if ext.rec != nil {
		ext.rec.add("complete %s dev=%s", ext.name, name)
	}
	if irp.PendingReturned {
		irp.MarkPending()
	}
	return iomgr.StatusSuccess
}

// newFilterDriver returns a legacy pass-through filter driver: every request
// is copied down with a completion routine; fast I/O detach detaches and
// deletes the filter's device.
func newFilterDriver(m *iomgr.Manager, name string) *iomgr.Driver {
	drv := m.CreateDriver(`\Driver\` + name)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		ext := dev.Extension.(*filterExt)
		if ext.rec != nil {
			ext.rec.add("dispatch %s", ext.name)
		}
		irp.CopyCurrentStackLocationToNext()
		irp.SetCompletionRoutine(filterCompletion, ext, true, true, true)
		return iomgr.CallDriver(ext.lower, irp)
	})
	drv.FastIO = &iomgr.FastIODispatch{
		DetachDevice: func(source, target *iomgr.Device) {
			ext := source.Extension.(*filterExt)
			if ext.rec != nil {
				ext.rec.add("fastio detach %s", ext.name)
			}
			if err := m.DetachDevice(target); err != nil {
				panic(err)
			}
			m.DeleteDevice(source)
		},
	}
	return drv
}

// attachFilter creates a filter device of drv named name and attaches it on top of target's stack.
func attachFilter(t testing.TB, m *iomgr.Manager, drv *iomgr.Driver, target *iomgr.Device, name string, rec *recorder) *iomgr.Device {
	t.Helper()
	dev, err := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	ext := &filterExt{name: name, rec: rec}
	dev.Extension = ext
	lower, err := m.AttachDeviceToDeviceStack(dev, target)
	if err != nil {
		t.Fatal(err)
	}
	ext.lower = lower
	dev.ClearFlags(iomgr.DeviceInitializing)
	return dev
}

// bottomExt configures the bottom test driver's behaviour.
type bottomExt struct {
	name   string
	rec    *recorder
	status iomgr.Status
	async  bool          // complete from another goroutine
	gate   chan struct{} // when async, wait for this before completing (nil: at once)
}

func newBottomDriver(m *iomgr.Manager) *iomgr.Driver {
	drv := m.CreateDriver(`\Driver\Bottom`)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		ext := dev.Extension.(*bottomExt)
		if ext.rec != nil {
			ext.rec.add("dispatch %s", ext.name)
		}
		n := uint64(len(irp.Buffer))
		if !ext.async {
			return irp.Complete(ext.status, n)
		}
		irp.MarkPending()
		go func() {
			if ext.gate != nil {
				<-ext.gate
			}
			if ext.rec != nil {
				ext.rec.add("async complete %s", ext.name)
			}
			irp.Complete(ext.status, n)
		}()
		return iomgr.StatusPending
	})
	return drv
}

func newBottom(t testing.TB, m *iomgr.Manager, drv *iomgr.Driver, name string, ext *bottomExt) *iomgr.Device {
	t.Helper()
	dev, err := m.CreateDevice(drv, name, iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	dev.SectorSize = 512
	dev.Extension = ext
	dev.ClearFlags(iomgr.DeviceInitializing)
	return dev
}

// catchBugCheck runs f and returns the bug check it raised, or nil.
func catchBugCheck(f func()) (bc *iomgr.BugCheck) {
	defer func() {
		if r := recover(); r != nil {
			err, ok := r.(error)
			if !ok || !errors.As(err, &bc) {
				panic(r)
			}
		}
	}()
	f()
	return nil
}

func equalStrings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n got  %q\n want %q", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d: got %q, want %q\n got  %q\n want %q", i, got[i], want[i], got, want)
		}
	}
}
