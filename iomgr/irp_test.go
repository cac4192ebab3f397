package iomgr_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// stack4 builds a bottom device with three pass-through filters above it
// (four layers) and returns the manager, the top device and the recorder.
func stack4(t testing.TB, bottom *bottomExt) (*iomgr.Manager, []*iomgr.Device, *recorder) {
	rec := &recorder{}
	bottom.rec = rec
	if bottom.name == "" {
		bottom.name = "disk"
	}
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, bottom)
	devs := []*iomgr.Device{disk}
	for i := 1; i <= 3; i++ {
		drv := newFilterDriver(m, "F"+string(rune('0'+i)))
		devs = append(devs, attachFilter(t, m, drv, disk, "F"+string(rune('0'+i)), rec))
	}
	return m, devs, rec
}

// originatorCompletion is set by the IRP's creator on the first stack location.
func originatorCompletion(dev *iomgr.Device, irp *iomgr.IRP, context any) iomgr.Status {
	rec := context.(*recorder)
	name := "<nil>"
	if dev != nil {
		name = dev.String()
	}
	rec.add("complete originator dev=%s", name)
	return iomgr.StatusSuccess
}

func TestCompletionRoutinesRunLIFOAcrossFourLayers(t *testing.T) {
	_, devs, rec := stack4(t, &bottomExt{status: iomgr.StatusSuccess})
	top := devs[len(devs)-1]
	if top.StackSize != 4 {
		t.Fatalf("top stack size %d, want 4", top.StackSize)
	}
	buf := make([]byte, 4096)
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, buf, 0)
	irp.SetCompletionRoutine(originatorCompletion, rec, true, true, true)
	ios := iomgr.CallDriverAndWait(top, irp)
	iomgr.FreeIRP(irp)
	if ios.Status != iomgr.StatusSuccess || ios.Information != 4096 {
		t.Fatalf("status %v info %d", ios.Status, ios.Information)
	}
	// Each routine gets the device of the driver that set it; the creator's
	// routine, on a location it set up without one of its own, gets none.
	equalStrings(t, rec.get(), []string{
		"dispatch F3", "dispatch F2", "dispatch F1", "dispatch disk",
		"complete F1 dev=F1", "complete F2 dev=F2", "complete F3 dev=F3",
		"complete originator dev=<nil>",
	})
}

func TestCompletionRoutineInvokeOnFlags(t *testing.T) {
	cases := []struct {
		name                         string
		status                       iomgr.Status
		cancel                       bool
		onSuccess, onError, onCancel bool
		want                         bool
	}{
		{"success/onSuccess", iomgr.StatusSuccess, false, true, false, false, true},
		{"success/onError only", iomgr.StatusSuccess, false, false, true, false, false},
		{"error/onError", iomgr.StatusDiskFull, false, false, true, false, true},
		{"error/onSuccess only", iomgr.StatusDiskFull, false, true, false, false, false},
		{"warning is not NT_SUCCESS", iomgr.StatusBufferOverflow, false, true, false, false, false},
		{"warning invokes onError", iomgr.StatusBufferOverflow, false, false, true, false, true},
		{"cancelled/onCancel", iomgr.StatusCancelled, true, false, false, true, true},
		{"cancelled/none", iomgr.StatusCancelled, true, false, false, false, false},
		{"cancel flag with success status/onCancel", iomgr.StatusSuccess, true, false, false, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := iomgr.NewManager()
			disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: c.status})
			irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorFlushBuffers, disk, nil, 0)
			var called atomic.Bool
			irp.SetCompletionRoutine(func(dev *iomgr.Device, irp *iomgr.IRP, _ any) iomgr.Status {
				called.Store(true)
				return iomgr.StatusSuccess
			}, nil, c.onSuccess, c.onError, c.onCancel)
			if c.cancel {
				iomgr.CancelIRP(irp)
			}
			st := iomgr.CallDriverAndWait(disk, irp).Status
			iomgr.FreeIRP(irp)
			if st != c.status {
				t.Fatalf("status %v, want %v", st, c.status)
			}
			if called.Load() != c.want {
				t.Fatalf("routine called = %v, want %v", called.Load(), c.want)
			}
		})
	}
}

// A routine returning MORE_PROCESSING_REQUIRED stops the walk; completing
// the IRP again resumes it at the next location.
func TestMoreProcessingRequiredStopsWalkAndSecondCompleteResumes(t *testing.T) {
	m := iomgr.NewManager()
	rec := &recorder{}
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{name: "disk", rec: rec, status: iomgr.StatusSuccess})
	f1 := attachFilter(t, m, newFilterDriver(m, "F1"), disk, "F1", rec)

	// F2 holds the IRP in its completion routine, then completes it again.
	var held *iomgr.IRP
	drv := m.CreateDriver(`\Driver\Holder`)
	holder, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	lower, err := m.AttachDeviceToDeviceStack(holder, disk)
	if err != nil {
		t.Fatal(err)
	}
	holder.ClearFlags(iomgr.DeviceInitializing)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		irp.CopyCurrentStackLocationToNext()
		irp.SetCompletionRoutine(func(dev *iomgr.Device, irp *iomgr.IRP, _ any) iomgr.Status {
			rec.add("complete holder: keep")
			held = irp
			return iomgr.StatusMoreProcessingRequired
		}, nil, true, true, true)
		iomgr.CallDriver(lower, irp)
		rec.add("holder dispatch returned")
		// Post-processing, then let the walk go on above us.
		held.IOStatus.Information = 42
		iomgr.CompleteRequest(held)
		return iomgr.StatusSuccess
	})
	_ = f1
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorWrite, holder, make([]byte, 512), 0)
	irp.SetCompletionRoutine(originatorCompletion, rec, true, true, true)
	ios := iomgr.CallDriverAndWait(holder, irp)
	iomgr.FreeIRP(irp)
	if ios.Information != 42 {
		t.Fatalf("information %d, want the holder's 42", ios.Information)
	}
	equalStrings(t, rec.get(), []string{
		"dispatch F1", "dispatch disk", "complete F1 dev=F1",
		"complete holder: keep", "holder dispatch returned",
		"complete originator dev=<nil>",
	})
}

func TestCompletingTwiceIsABugCheck(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: iomgr.StatusSuccess})
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorFlushBuffers, disk, nil, 0)
	iomgr.CallDriverAndWait(disk, irp)
	bc := catchBugCheck(func() { iomgr.CompleteRequest(irp) })
	if bc == nil || bc.Code != "MULTIPLE_IRP_COMPLETE_REQUESTS" {
		t.Fatalf("second completion: got %v, want MULTIPLE_IRP_COMPLETE_REQUESTS", bc)
	}
	iomgr.FreeIRP(irp)
	if bc := catchBugCheck(func() { iomgr.FreeIRP(irp) }); bc == nil || bc.Code != "MULTIPLE_IRP_FREES" {
		t.Fatalf("second free: got %v", bc)
	}
}

// The chapter's hazard: a driver copying its whole stack location into the
// next one also copies the completion routine its caller set, which NT then
// invokes twice. iomgr invokes a routine only on the location it was set on.
func TestWholeStackLocationCopyDoesNotInvokeRoutineTwice(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: iomgr.StatusSuccess})
	drv := m.CreateDriver(`\Driver\Sloppy`)
	sloppy, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	lower, _ := m.AttachDeviceToDeviceStack(sloppy, disk)
	sloppy.ClearFlags(iomgr.DeviceInitializing)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		*irp.NextStackLocation() = *irp.CurrentStackLocation() // the bug
		return iomgr.CallDriver(lower, irp)
	})
	var calls atomic.Int32
	var gotDev atomic.Pointer[iomgr.Device]
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, sloppy, make([]byte, 512), 0)
	irp.SetCompletionRoutine(func(dev *iomgr.Device, irp *iomgr.IRP, _ any) iomgr.Status {
		calls.Add(1)
		gotDev.Store(dev)
		return iomgr.StatusSuccess
	}, nil, true, true, true)
	iomgr.CallDriverAndWait(sloppy, irp)
	iomgr.FreeIRP(irp)
	if calls.Load() != 1 || gotDev.Load() != nil {
		t.Fatalf("originator routine called %d times (dev %v), want once with no device", calls.Load(), gotDev.Load())
	}
}

// A dispatch returning PENDING with completion from another goroutine: the
// originator waits only then, and the pending state reaches it through
// routines (which call MarkPending) and through layers without routines.
func TestPendingCompletedFromAnotherGoroutine(t *testing.T) {
	gate := make(chan struct{})
	_, devs, rec := stack4(t, &bottomExt{status: iomgr.StatusSuccess, async: true, gate: gate})
	top := devs[len(devs)-1]
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, make([]byte, 1024), 0)
	st := iomgr.CallDriver(top, irp)
	if st != iomgr.StatusPending {
		t.Fatalf("CallDriver returned %v, want STATUS_PENDING", st)
	}
	rec.add("originator saw pending")
	close(gate)
	irp.Wait()
	if !irp.PendingReturned {
		t.Fatal("PendingReturned not propagated to the originator")
	}
	if irp.IOStatus.Information != 1024 {
		t.Fatalf("information %d", irp.IOStatus.Information)
	}
	iomgr.FreeIRP(irp)
	equalStrings(t, rec.get(), []string{
		"dispatch F3", "dispatch F2", "dispatch F1", "dispatch disk",
		"originator saw pending", "async complete disk",
		"complete F1 dev=F1", "complete F2 dev=F2", "complete F3 dev=F3",
	})

	// Without completion routines (skip-location pass-through), the I/O
	// manager itself propagates the pending state.
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: iomgr.StatusSuccess, async: true})
	drv := m.CreateDriver(`\Driver\Copy`)
	cp, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	lower, _ := m.AttachDeviceToDeviceStack(cp, disk)
	cp.ClearFlags(iomgr.DeviceInitializing)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		irp.CopyCurrentStackLocationToNext()
		return iomgr.CallDriver(lower, irp)
	})
	irp = iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, cp, make([]byte, 512), 0)
	if ios := iomgr.CallDriverAndWait(cp, irp); ios.Status != iomgr.StatusSuccess || !irp.PendingReturned {
		t.Fatalf("status %v pendingReturned %v", ios.Status, irp.PendingReturned)
	}
	iomgr.FreeIRP(irp)
}

// The originator does not wait for a request completed synchronously.
func TestOriginatorWaitsOnlyForPendingIRPs(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: iomgr.StatusEndOfFile})
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, disk, make([]byte, 512), 1<<40)
	done := make(chan iomgr.IOStatusBlock, 1)
	go func() { done <- iomgr.CallDriverAndWait(disk, irp) }()
	select {
	case ios := <-done:
		if ios.Status != iomgr.StatusEndOfFile || irp.PendingReturned {
			t.Fatalf("status %v pending %v", ios.Status, irp.PendingReturned)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("originator waited for a request that completed synchronously")
	}
	iomgr.FreeIRP(irp)
}

// A dispatch returning PENDING without marking the IRP pending is caught at
// the originator instead of hanging it.
func TestPendingWithoutMarkIsABugCheck(t *testing.T) {
	m := iomgr.NewManager()
	drv := m.CreateDriver(`\Driver\Forgetful`)
	dev, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	dev.ClearFlags(iomgr.DeviceInitializing)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		go irp.Complete(iomgr.StatusSuccess, 0)
		return iomgr.StatusPending
	})
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorFlushBuffers, dev, nil, 0)
	bc := catchBugCheck(func() { iomgr.CallDriverAndWait(dev, irp) })
	if bc == nil || bc.Code != "PENDING_NOT_MARKED" {
		t.Fatalf("got %v, want PENDING_NOT_MARKED", bc)
	}
}

// The seeds' "SFilterBetterFSDInterceptRoutine": a filter that needs the IRP
// back after the lower driver completes it sets a routine that signals an
// event and returns MORE_PROCESSING_REQUIRED, waits for it if the lower
// driver returned PENDING, post-processes, and completes the IRP again. The
// "bad" variant, which returns the lower driver's status without
// completing, is caught.
func TestSynchronousInterceptWithMoreProcessingRequired(t *testing.T) {
	for _, async := range []bool{false, true} {
		m := iomgr.NewManager()
		disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: iomgr.StatusSuccess, async: async})
		drv := m.CreateDriver(`\Driver\Intercept`)
		flt, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
		lower, _ := m.AttachDeviceToDeviceStack(flt, disk)
		flt.ClearFlags(iomgr.DeviceInitializing)
		drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
			done := make(chan struct{})
			irp.CopyCurrentStackLocationToNext()
			irp.SetCompletionRoutine(func(_ *iomgr.Device, _ *iomgr.IRP, ctx any) iomgr.Status {
				close(ctx.(chan struct{}))
				return iomgr.StatusMoreProcessingRequired
			}, done, true, true, true)
			if iomgr.CallDriver(lower, irp) == iomgr.StatusPending {
				<-done
			}
			for i := range irp.Buffer { // post-processing: "decrypt"
				irp.Buffer[i] = 0xAB
			}
			st := irp.IOStatus.Status
			iomgr.CompleteRequest(irp)
			return st
		})
		buf := make([]byte, 512)
		irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, flt, buf, 0)
		ios := iomgr.CallDriverAndWait(flt, irp)
		iomgr.FreeIRP(irp)
		if ios.Status != iomgr.StatusSuccess || buf[0] != 0xAB || buf[511] != 0xAB {
			t.Fatalf("async=%v: status %v buf[0]=%x", async, ios.Status, buf[0])
		}
	}

	// The bad variant.
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: iomgr.StatusSuccess})
	drv := m.CreateDriver(`\Driver\BadIntercept`)
	flt, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	lower, _ := m.AttachDeviceToDeviceStack(flt, disk)
	flt.ClearFlags(iomgr.DeviceInitializing)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		irp.CopyCurrentStackLocationToNext()
		irp.SetCompletionRoutine(func(*iomgr.Device, *iomgr.IRP, any) iomgr.Status {
			return iomgr.StatusMoreProcessingRequired
		}, nil, true, true, true)
		return iomgr.CallDriver(lower, irp)
	})
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, flt, make([]byte, 512), 0)
	if bc := catchBugCheck(func() { iomgr.CallDriverAndWait(flt, irp) }); bc == nil || bc.Code != "IRP_NOT_COMPLETED" {
		t.Fatalf("bad intercept: got %v, want IRP_NOT_COMPLETED", bc)
	}
}

func TestMasterCompletesWhenLastAssociatedIRPCompletes(t *testing.T) {
	for _, failOne := range []bool{false, true} {
		m := iomgr.NewManager()
		gate := make(chan struct{})
		disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: iomgr.StatusSuccess, async: true, gate: gate})
		bad := newBottom(t, m, newBottomDriver(m), `\Device\Bad`, &bottomExt{status: iomgr.StatusDeviceDataError})

		// A splitting driver: the master becomes 4 associated IRPs of 1 KiB.
		drv := m.CreateDriver(`\Driver\Split`)
		split, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
		split.StackSize = 2
		split.ClearFlags(iomgr.DeviceInitializing)
		var masterDone atomic.Bool
		drv.SetDispatchAll(func(dev *iomgr.Device, master *iomgr.IRP) iomgr.Status {
			master.MarkPending()
			const parts = 4
			master.SetAssociatedCount(parts)
			master.IOStatus = iomgr.IOStatusBlock{Status: iomgr.StatusSuccess, Information: uint64(len(master.Buffer))}
			for i := 0; i < parts; i++ {
				target := disk
				if failOne && i == 2 {
					target = bad
				}
				a := iomgr.MakeAssociatedIRP(master, target.StackSize)
				a.Buffer = master.Buffer[i*1024 : (i+1)*1024]
				sl := a.NextStackLocation()
				sl.Major = iomgr.MajorRead
				sl.Parameters.Read = iomgr.ReadWriteParameters{Length: 1024, ByteOffset: int64(i * 1024)}
				iomgr.CallDriver(target, a)
			}
			return iomgr.StatusPending
		})
		irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, split, make([]byte, 4096), 0)
		irp.SetCompletionRoutine(func(*iomgr.Device, *iomgr.IRP, any) iomgr.Status {
			masterDone.Store(true)
			return iomgr.StatusSuccess
		}, nil, true, true, true)
		if st := iomgr.CallDriver(split, irp); st != iomgr.StatusPending {
			t.Fatalf("split returned %v", st)
		}
		if masterDone.Load() {
			t.Fatal("master completed before its associated IRPs")
		}
		close(gate)
		irp.Wait()
		want := iomgr.StatusSuccess
		if failOne {
			want = iomgr.StatusDeviceDataError
		}
		if !masterDone.Load() || irp.IOStatus.Status != want {
			t.Fatalf("failOne=%v: master done %v status %v, want %v", failOne, masterDone.Load(), irp.IOStatus.Status, want)
		}
		iomgr.FreeIRP(irp)
	}
}

func TestConcurrentCompletionFromEightGoroutines(t *testing.T) {
	const workers, perWorker = 8, 200
	_, devs, _ := stack4(t, &bottomExt{status: iomgr.StatusSuccess, async: true})
	top := devs[len(devs)-1]
	var wg sync.WaitGroup
	var failures atomic.Int32
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for i := 0; i < perWorker; i++ {
				irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, buf, int64(i)*512)
				if ios := iomgr.CallDriverAndWait(top, irp); ios.Status != iomgr.StatusSuccess || ios.Information != 512 {
					failures.Add(1)
				}
				iomgr.FreeIRP(irp)
			}
		}()
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d requests failed", failures.Load())
	}

	// One master, many associated IRPs completed by 8 goroutines at once.
	m := iomgr.NewManager()
	drv := m.CreateDriver(`\Driver\Queue`)
	q, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	q.ClearFlags(iomgr.DeviceInitializing)
	queue := make(chan *iomgr.IRP, 1024)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		irp.MarkPending()
		queue <- irp
		return iomgr.StatusPending
	})
	var cwg sync.WaitGroup
	for w := 0; w < workers; w++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for irp := range queue {
				irp.Complete(iomgr.StatusSuccess, 1)
			}
		}()
	}
	// The master goes to a splitting driver that fans it out to the queue.
	const n = 1000
	sdrv := m.CreateDriver(`\Driver\Split`)
	split, _ := m.CreateDevice(sdrv, "", iomgr.DeviceDisk, 0)
	split.StackSize = 2
	split.ClearFlags(iomgr.DeviceInitializing)
	sdrv.SetDispatchAll(func(dev *iomgr.Device, master *iomgr.IRP) iomgr.Status {
		master.MarkPending()
		master.SetAssociatedCount(n)
		master.IOStatus.Status = iomgr.StatusSuccess
		for i := 0; i < n; i++ {
			a := iomgr.MakeAssociatedIRP(master, 1)
			a.NextStackLocation().Major = iomgr.MajorRead
			iomgr.CallDriver(q, a)
		}
		return iomgr.StatusPending
	})
	master := iomgr.AllocateIRP(2)
	var masterCompletions atomic.Int32
	masterDone := make(chan struct{})
	master.NextStackLocation().Major = iomgr.MajorRead
	master.SetCompletionRoutine(func(*iomgr.Device, *iomgr.IRP, any) iomgr.Status {
		masterCompletions.Add(1)
		close(masterDone)
		return iomgr.StatusMoreProcessingRequired
	}, nil, true, true, true)
	iomgr.CallDriver(split, master)
	<-masterDone
	close(queue)
	cwg.Wait()
	if masterCompletions.Load() != 1 {
		t.Fatalf("master completed %d times", masterCompletions.Load())
	}
	iomgr.FreeIRP(master)
}

func TestCancelRunsCancelRoutineOnce(t *testing.T) {
	m := iomgr.NewManager()
	drv := m.CreateDriver(`\Driver\Queue`)
	q, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	q.ClearFlags(iomgr.DeviceInitializing)
	var calls atomic.Int32
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		irp.MarkPending()
		irp.SetCancelRoutine(func(d *iomgr.Device, irp *iomgr.IRP) {
			if d != q {
				t.Errorf("cancel routine got device %v", d)
			}
			calls.Add(1)
			irp.Complete(iomgr.StatusCancelled, 0)
		})
		return iomgr.StatusPending
	})
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, q, make([]byte, 512), 0)
	if st := iomgr.CallDriver(q, irp); st != iomgr.StatusPending {
		t.Fatal(st)
	}
	if !iomgr.CancelIRP(irp) || iomgr.CancelIRP(irp) {
		t.Fatal("cancel routine should run exactly once")
	}
	irp.Wait()
	if irp.IOStatus.Status != iomgr.StatusCancelled || !irp.Cancelled() || calls.Load() != 1 {
		t.Fatalf("status %v cancelled %v calls %d", irp.IOStatus.Status, irp.Cancelled(), calls.Load())
	}
	iomgr.FreeIRP(irp)
}

func TestNoStackLocationLeftIsABugCheck(t *testing.T) {
	m := iomgr.NewManager()
	disk := newBottom(t, m, newBottomDriver(m), `\Device\Disk0`, &bottomExt{status: iomgr.StatusSuccess})
	f := attachFilter(t, m, newFilterDriver(m, "F"), disk, "F", nil)
	irp := iomgr.AllocateIRP(1) // one too few for the two-layer stack
	irp.NextStackLocation().Major = iomgr.MajorFlushBuffers
	if bc := catchBugCheck(func() { iomgr.CallDriver(f, irp) }); bc == nil || bc.Code != "NO_MORE_IRP_STACK_LOCATIONS" {
		t.Fatalf("got %v", bc)
	}
}

func TestMissingDispatchCompletesWithInvalidDeviceRequest(t *testing.T) {
	m := iomgr.NewManager()
	drv := m.CreateDriver(`\Driver\Empty`)
	dev, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorWrite, dev, make([]byte, 512), 0)
	if st := iomgr.CallDriverAndWait(dev, irp).Status; st != iomgr.StatusInvalidDeviceRequest {
		t.Fatalf("got %v", st)
	}
	iomgr.FreeIRP(irp)
}

func TestDeviceIoControlRequestCarriesInputAndOutput(t *testing.T) {
	m := iomgr.NewManager()
	drv := m.CreateDriver(`\Driver\Ctl`)
	dev, _ := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	code := iomgr.CTLCode(iomgr.DeviceDisk, 0x17, iomgr.MethodBuffered, iomgr.FileReadAccess)
	drv.Dispatch[iomgr.MajorDeviceControl] = func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		if sl.Parameters.DeviceIoControl.ControlCode != code {
			return irp.Complete(iomgr.StatusInvalidDeviceRequest, 0)
		}
		*irp.SystemBuffer.(*int64) = sl.Parameters.DeviceIoControl.Input.(int64) * 2
		return irp.Complete(iomgr.StatusSuccess, 8)
	}
	var out int64
	irp := iomgr.BuildDeviceIoControlRequest(code, dev, int64(21), &out, false)
	if ios := iomgr.CallDriverAndWait(dev, irp); ios.Status != iomgr.StatusSuccess || out != 42 {
		t.Fatalf("status %v out %d", ios.Status, out)
	}
	iomgr.FreeIRP(irp)
}
