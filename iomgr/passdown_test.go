package iomgr_test

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// passDownWays are the three ways a driver passes an IRP on; the tests run
// each of them with a stack that fits the IRP and with one that grew
// beneath the passing device after the IRP was built.
var passDownWays = []struct {
	name string
	pass func(irp *iomgr.IRP, lower *iomgr.Device) iomgr.Status
}{
	{"PassDown", iomgr.PassDown},
	{"PassDownWith", func(irp *iomgr.IRP, lower *iomgr.Device) iomgr.Status {
		return iomgr.PassDownWith(irp, lower, nil, nil, nil)
	}},
	{"PassDownAndWait", func(irp *iomgr.IRP, lower *iomgr.Device) iomgr.Status {
		st := iomgr.PassDownAndWait(irp, lower)
		iomgr.CompleteRequest(irp)
		return st
	}},
}

// passStack is an upper device that passes everything to the top of a
// lower device's stack with pass; late attaches a filter beneath it after
// its stack size was fixed, so its IRPs are a location short.
type passStack struct {
	m          *iomgr.Manager
	top, lower *iomgr.Device
	seen       atomic.Pointer[iomgr.IRP] // the IRP the lower driver got
}

func newPassStack(t *testing.T, pass func(irp *iomgr.IRP, lower *iomgr.Device) iomgr.Status, late bool, lowerDispatch iomgr.DispatchFunc) *passStack {
	t.Helper()
	s := &passStack{m: iomgr.NewManager()}
	bottom := s.m.CreateDriver(`\Driver\Lower`)
	bottom.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		s.seen.Store(irp)
		return lowerDispatch(dev, irp)
	})
	lower, err := s.m.CreateDevice(bottom, `\Device\Lower`, iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	lower.ClearFlags(iomgr.DeviceInitializing)
	s.lower = lower
	upper := s.m.CreateDriver(`\Driver\Upper`)
	upper.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		return pass(irp, iomgr.GetAttachedDevice(lower))
	})
	top, err := s.m.CreateDevice(upper, `\Device\Upper`, iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	top.ClearFlags(iomgr.DeviceInitializing)
	top.StackSize = 2 // set up for the lower stack of one
	s.top = top
	if late {
		f, err := s.m.CreateDevice(newFilterDriver(s.m, "late"), "", iomgr.DeviceDisk, 0)
		if err != nil {
			t.Fatal(err)
		}
		ext := &filterExt{name: "late"}
		f.Extension = ext
		if err := s.m.AttachDeviceToDeviceStackSafe(f, lower, &ext.lower); err != nil {
			t.Fatal(err)
		}
		f.ClearFlags(iomgr.DeviceInitializing)
	}
	return s
}

// checkPath fails unless the lower driver got irp itself (the stack fits)
// or another IRP (the request travelled in one of the right size).
func (s *passStack) checkPath(t *testing.T, irp *iomgr.IRP, late bool) {
	t.Helper()
	if got := s.seen.Load(); (got == irp) == late {
		t.Fatalf("lower driver got the caller's IRP: %v, want %v (stack short: %v)", got == irp, !late, late)
	}
}

// TestPassDownReturnsTheLowerDriversMDLBuffer: an MDL read answers with
// memory of the lower driver's own in the IRP's Buffer. When a filter
// attached after the IRP was built, the request travels in an IRP of the
// right size, and the buffer the lower driver left there must reach the
// caller's IRP, as it does when the IRP itself travels; otherwise the
// requestor sees success with no data. Found by TestStress: fio's 1 MiB
// reads over NBD failed with EIO while disk filters came and went. (It
// covers what filter.CallLowerAndWait's test did: PassDownAndWait.)
func TestPassDownReturnsTheLowerDriversMDLBuffer(t *testing.T) {
	lent := []byte("the disk's own memory")
	lender := func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		if irp.CurrentStackLocation().Minor == iomgr.MinorCompleteMDL {
			irp.Buffer = nil
			return irp.Complete(iomgr.StatusSuccess, 0)
		}
		irp.Buffer = lent
		return irp.Complete(iomgr.StatusSuccess, uint64(len(lent)))
	}
	for _, way := range passDownWays {
		for _, late := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/late=%v", way.name, late), func(t *testing.T) {
				s := newPassStack(t, way.pass, late, lender)
				irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, s.top, nil, 0)
				sl := irp.NextStackLocation()
				sl.Minor = iomgr.MinorMDL
				sl.SetTransfer(len(lent), 0)
				ios := iomgr.CallDriverAndWait(s.top, irp)
				got := irp.Buffer
				s.checkPath(t, irp, late)
				iomgr.FreeIRP(irp)
				if !ios.Status.IsSuccess() || !bytes.Equal(got, lent) {
					t.Fatalf("MDL read passed down: %v, buffer %q, want %q", ios.Status, got, lent)
				}
			})
		}
	}
}

// TestPassDownWithAdjustsAndCompletes: the lower driver sees the request as
// adjust changed it, and the completion routine runs once, for the passing
// device, and what it leaves in the IRP is what the caller gets, whether the
// IRP itself travels or an associated one does, and whether the lower
// driver completes at once or later from another goroutine.
func TestPassDownWithAdjustsAndCompletes(t *testing.T) {
	for _, late := range []bool{false, true} {
		for _, async := range []bool{false, true} {
			t.Run(fmt.Sprintf("late=%v/async=%v", late, async), func(t *testing.T) {
				var sawOffset atomic.Int64
				lower := func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
					sawOffset.Store(irp.CurrentStackLocation().Transfer().ByteOffset)
					if !async {
						return irp.Complete(iomgr.StatusSuccess, 512)
					}
					irp.MarkPending()
					go irp.Complete(iomgr.StatusSuccess, 512)
					return iomgr.StatusPending
				}
				var runs atomic.Int32
				var routineDev atomic.Pointer[iomgr.Device]
				routine := func(dev *iomgr.Device, irp *iomgr.IRP, context any) iomgr.Status {
					if irp.PendingReturned {
						irp.MarkPending()
					}
					runs.Add(1)
					routineDev.Store(dev)
					irp.IOStatus.Information += uint64(context.(int))
					return iomgr.StatusSuccess
				}
				pass := func(irp *iomgr.IRP, low *iomgr.Device) iomgr.Status {
					return iomgr.PassDownWith(irp, low, func(next *iomgr.StackLocation) {
						next.Transfer().ByteOffset += 4096
					}, routine, 7)
				}
				s := newPassStack(t, pass, late, lower)
				irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, s.top, make([]byte, 512), 1024)
				ios := iomgr.CallDriverAndWait(s.top, irp)
				s.checkPath(t, irp, late)
				iomgr.FreeIRP(irp)
				if ios.Status != iomgr.StatusSuccess || ios.Information != 519 {
					t.Fatalf("caller got %v, %d bytes; want success, 512+7 (the routine's change)", ios.Status, ios.Information)
				}
				if got := sawOffset.Load(); got != 1024+4096 {
					t.Fatalf("lower driver saw offset %d, want %d", got, 1024+4096)
				}
				if runs.Load() != 1 || routineDev.Load() != s.top {
					t.Fatalf("completion routine ran %d times for %v, want once for %v", runs.Load(), routineDev.Load(), s.top)
				}
			})
		}
	}
}

// TestPassDownWithShortStackRoutineMustNotKeepTheIRP: a completion routine
// given to PassDownWith cannot keep an associated IRP (it is freed when its
// completion ends); doing so is a bug check naming PassDownAndWait.
func TestPassDownWithShortStackRoutineMustNotKeepTheIRP(t *testing.T) {
	keep := func(*iomgr.Device, *iomgr.IRP, any) iomgr.Status { return iomgr.StatusMoreProcessingRequired }
	pass := func(irp *iomgr.IRP, low *iomgr.Device) iomgr.Status {
		return iomgr.PassDownWith(irp, low, nil, keep, nil)
	}
	s := newPassStack(t, pass, true, func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		return irp.Complete(iomgr.StatusSuccess, 0)
	})
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorFlushBuffers, s.top, nil, 0)
	bc := catchBugCheck(func() { iomgr.CallDriverAndWait(s.top, irp) })
	if bc == nil || bc.Code != "INVALID_COMPLETION_ROUTINE" {
		t.Fatalf("bug check %v, want INVALID_COMPLETION_ROUTINE", bc)
	}
}

// TestPassDownAndWaitKeepsTheIRP: the caller gets the IRP back after the
// lower driver completed it, sees the lower driver's result, may change it,
// and completes it; the originator gets the caller's result.
func TestPassDownAndWaitKeepsTheIRP(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late=%v", late), func(t *testing.T) {
			lower := func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
				irp.MarkPending()
				go irp.Complete(iomgr.StatusEndOfFile, 3)
				return iomgr.StatusPending
			}
			var lowerStatus iomgr.IOStatusBlock
			pass := func(irp *iomgr.IRP, low *iomgr.Device) iomgr.Status {
				iomgr.PassDownAndWait(irp, low)
				lowerStatus = irp.IOStatus
				return irp.Complete(iomgr.StatusSuccess, 9)
			}
			s := newPassStack(t, pass, late, lower)
			irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, s.top, make([]byte, 512), 0)
			ios := iomgr.CallDriverAndWait(s.top, irp)
			s.checkPath(t, irp, late)
			iomgr.FreeIRP(irp)
			if lowerStatus != (iomgr.IOStatusBlock{Status: iomgr.StatusEndOfFile, Information: 3}) {
				t.Fatalf("caller saw the lower driver's result %+v, want END_OF_FILE, 3", lowerStatus)
			}
			if ios != (iomgr.IOStatusBlock{Status: iomgr.StatusSuccess, Information: 9}) {
				t.Fatalf("originator got %+v, want the caller's SUCCESS, 9", ios)
			}
		})
	}
}

// TestStackLocationTransfer: Transfer is the read's or the write's
// parameters by the location's major function, nil for any other, and
// SetTransfer sets them.
func TestStackLocationTransfer(t *testing.T) {
	var sl iomgr.StackLocation
	sl.Major = iomgr.MajorRead
	sl.SetTransfer(4096, 8192)
	if sl.Parameters.Read != (iomgr.ReadWriteParameters{Length: 4096, ByteOffset: 8192}) || sl.Transfer() != &sl.Parameters.Read {
		t.Fatalf("read: %+v, Transfer %p, want &Parameters.Read %p", sl.Parameters.Read, sl.Transfer(), &sl.Parameters.Read)
	}
	sl.Major = iomgr.MajorWrite
	sl.SetTransfer(512, 1024)
	if sl.Parameters.Write != (iomgr.ReadWriteParameters{Length: 512, ByteOffset: 1024}) || sl.Transfer() != &sl.Parameters.Write {
		t.Fatalf("write: %+v, Transfer %p, want &Parameters.Write %p", sl.Parameters.Write, sl.Transfer(), &sl.Parameters.Write)
	}
	sl.Major = iomgr.MajorDeviceControl
	if p := sl.Transfer(); p != nil {
		t.Fatalf("device control: Transfer %+v, want nil", p)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("SetTransfer on a device control did not panic")
			}
		}()
		sl.SetTransfer(1, 0)
	}()
}

// TestPassDownKeepsWhoAsked: the request the lower driver gets is the
// caller's in everything but its stack size, whichever way it was passed
// down and whether the IRP itself travels or one of the right size does:
// a user-mode request stays user mode (a file system checks the access of
// user-mode requests only and trusts kernel-mode ones, so a request that
// became kernel mode on the way would skip the check), and its requestor,
// paging and no-cache flags, file object and buffers stay what they were.
func TestPassDownKeepsWhoAsked(t *testing.T) {
	type seen struct {
		mode       iomgr.ProcessorMode
		requestor  string
		flags      iomgr.IRPFlags
		fileObject *iomgr.FileObject
		slFile     *iomgr.FileObject
		system     any
		buffer     []byte
	}
	fo := &iomgr.FileObject{FileName: `\secret`}
	buf := make([]byte, 512)
	sys := &struct{ x int }{}
	const flags = iomgr.IRPPagingIO | iomgr.IRPNoCache | iomgr.IRPSynchronousAPI | iomgr.IRPReadOperation
	for _, way := range passDownWays {
		for _, late := range []bool{false, true} {
			for _, mode := range []iomgr.ProcessorMode{iomgr.UserMode, iomgr.KernelMode} {
				t.Run(fmt.Sprintf("%s/late=%v/mode=%d", way.name, late, mode), func(t *testing.T) {
					var got atomic.Pointer[seen]
					// The lower driver acts as a file system: a user-mode
					// caller has no access here, a kernel-mode one is
					// trusted.
					fsd := func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
						got.Store(&seen{irp.RequestorMode, irp.Requestor, irp.Flags &^ iomgr.IRPAssociatedIRP,
							irp.FileObject, irp.CurrentStackLocation().FileObject, irp.SystemBuffer, irp.Buffer})
						if irp.RequestorMode == iomgr.UserMode {
							return irp.Complete(iomgr.StatusAccessDenied, 0)
						}
						return irp.Complete(iomgr.StatusSuccess, 0)
					}
					s := newPassStack(t, way.pass, late, fsd)
					irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, s.top, buf, 0)
					irp.RequestorMode, irp.Requestor, irp.Flags = mode, "vdisk cp", flags
					irp.FileObject, irp.SystemBuffer = fo, sys
					irp.NextStackLocation().FileObject = fo
					ios := iomgr.CallDriverAndWait(s.top, irp)
					s.checkPath(t, irp, late)
					iomgr.FreeIRP(irp)
					want := iomgr.StatusSuccess
					if mode == iomgr.UserMode {
						want = iomgr.StatusAccessDenied
					}
					if ios.Status != want {
						t.Errorf("a request of mode %d got %v from the file system below, want %v", mode, ios.Status, want)
					}
					g := got.Load()
					if g == nil {
						t.Fatal("the lower driver got nothing")
					}
					if g.mode != mode || g.requestor != "vdisk cp" || g.flags != flags || g.fileObject != fo ||
						g.slFile != fo || g.system != any(sys) || &g.buffer[0] != &buf[0] {
						t.Errorf("lower driver saw mode %d, requestor %q, flags %#x, file object %v (location %v), system buffer %v, own buffer %v; want %d, %q, %#x, %v, the caller's",
							g.mode, g.requestor, g.flags, g.fileObject, g.slFile, g.system, &g.buffer[0] == &buf[0], mode, "vdisk cp", flags, fo)
					}
				})
			}
		}
	}
}
