package fltmgr_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

type log struct {
	mu sync.Mutex
	ev []string
}

func (l *log) add(format string, args ...any) {
	l.mu.Lock()
	l.ev = append(l.ev, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *log) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.ev
	l.ev = nil
	return ev
}

// world is testworld's stack, with the raw file system and the filter
// manager loaded.
type world struct {
	*testworld.World
	fm *fltmgr.Manager
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := testworld.New(t, true)
	fm, err := fltmgr.Load(w.Mounts)
	if err != nil {
		t.Fatal(err)
	}
	return &world{World: w, fm: fm}
}

// recording registers a minifilter whose callbacks log their calls on reads.
func recording(l *log, name, altitude string, pre fltmgr.PreopStatus) fltmgr.Registration {
	return fltmgr.Registration{Name: name, Altitude: altitude, Operations: []fltmgr.Operation{{
		Major: iomgr.MajorRead,
		Pre: func(inst *fltmgr.Instance, d *fltmgr.CallbackData) (fltmgr.PreopStatus, any) {
			l.add("pre %s", name)
			if pre == fltmgr.PreopComplete {
				d.IOStatus = iomgr.IOStatusBlock{Status: iomgr.StatusAccessDenied}
			}
			return pre, name + "-ctx"
		},
		Post: func(inst *fltmgr.Instance, d *fltmgr.CallbackData, ctx any, draining bool) fltmgr.PostopStatus {
			l.add("post %s %v %s", name, ctx, d.IOStatus.Status.Name())
			return fltmgr.PostopFinishedProcessing
		},
	}}}
}

func (w *world) read(t *testing.T, fo *iomgr.FileObject) iomgr.Status {
	t.Helper()
	top := iomgr.RelatedDevice(fo)
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, top, make([]byte, 512), 0)
	irp.NextStackLocation().FileObject = fo
	st := iomgr.CallDriverAndWait(top, irp).Status
	iomgr.FreeIRP(irp)
	return st
}

func TestPreCallbacksHighestAltitudeFirstPostLowestFirst(t *testing.T) {
	w := newWorld(t)
	l := &log{}
	for _, r := range []fltmgr.Registration{
		recording(l, "mid", "320000", fltmgr.PreopSuccessWithCallback),
		recording(l, "high", "385100", fltmgr.PreopSuccessWithCallback),
		recording(l, "low", "140000.5", fltmgr.PreopSynchronize),
	} {
		if _, err := w.fm.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	// A legacy filter loaded after the filter manager sits above its frame.
	_, err := filter.Load(w.Mounts, "Legacy", filter.Hooks{Dispatch: func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		if dev.Extension.(*filter.Extension).Role == filter.VolumeRole && irp.CurrentStackLocation().Major == iomgr.MajorRead {
			l.add("legacy")
		}
		return filter.PassThrough(dev, irp)
	}})
	if err != nil {
		t.Fatal(err)
	}
	fo := w.Open(t)
	defer fo.CloseHandle("test")
	if st := w.read(t, fo); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	want := []string{"legacy", "pre high", "pre mid", "pre low",
		"post low low-ctx STATUS_SUCCESS", "post mid mid-ctx STATUS_SUCCESS", "post high high-ctx STATUS_SUCCESS"}
	if got := l.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order\n got  %q\n want %q", got, want)
	}
	if insts := w.fm.Instances(w.Volume); len(insts) != 3 || insts[0].Filter.Name != "high" || insts[2].Filter.Name != "low" {
		t.Fatalf("instances %v", insts)
	}
}

func TestCompleteStopsLowerFiltersAndRunsPostsAbove(t *testing.T) {
	w := newWorld(t)
	l := &log{}
	w.fm.Register(recording(l, "high", "400000", fltmgr.PreopSuccessWithCallback))
	w.fm.Register(recording(l, "skip", "300000", fltmgr.PreopSuccessNoCallback))
	w.fm.Register(recording(l, "deny", "200000", fltmgr.PreopComplete))
	w.fm.Register(recording(l, "below", "100000", fltmgr.PreopSuccessWithCallback))
	fo := w.Open(t)
	defer fo.CloseHandle("test")
	if st := w.read(t, fo); st != iomgr.StatusAccessDenied {
		t.Fatalf("status %v", st)
	}
	want := []string{"pre high", "pre skip", "pre deny", "post high high-ctx STATUS_ACCESS_DENIED"}
	if got := l.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestAltitudesAreUniqueAndReloadKeepsOrder(t *testing.T) {
	w := newWorld(t)
	l := &log{}
	w.fm.Register(recording(l, "a", "300000", fltmgr.PreopSuccessNoCallback))
	if _, err := w.fm.Register(recording(l, "b", "300000", fltmgr.PreopSuccessNoCallback)); !errors.Is(err, fltmgr.ErrAltitudeInUse) {
		t.Fatalf("duplicate altitude: %v", err)
	}
	for _, bad := range []string{"", "abc", "-5", "0", "1e5"} {
		if _, err := w.fm.Register(recording(l, "bad"+bad, bad, fltmgr.PreopSuccessNoCallback)); !errors.Is(err, fltmgr.ErrBadAltitude) {
			t.Fatalf("altitude %q: %v", bad, err)
		}
	}
	w.fm.Register(recording(l, "c", "200000", fltmgr.PreopSuccessNoCallback))
	w.fm.Register(recording(l, "d", "100000", fltmgr.PreopSuccessNoCallback))
	fo := w.Open(t)
	defer fo.CloseHandle("test")
	w.read(t, fo)
	first := l.take()
	if err := w.fm.Unregister("c"); err != nil {
		t.Fatal(err)
	}
	w.read(t, fo)
	if got := l.take(); fmt.Sprint(got) != "[pre a pre d]" {
		t.Fatalf("without c: %q", got)
	}
	w.fm.Register(recording(l, "c", "200000", fltmgr.PreopSuccessNoCallback))
	w.read(t, fo)
	if got := l.take(); fmt.Sprint(got) != fmt.Sprint(first) {
		t.Fatalf("after reload %q, before %q", got, first)
	}
}

func TestContextsLiveAsLongAsTheirInstanceAndStream(t *testing.T) {
	w := newWorld(t)
	l := &log{}
	reg := fltmgr.Registration{Name: "ctx", Altitude: "300000",
		InstanceSetup: func(inst *fltmgr.Instance) error {
			inst.SetContext("instance-ctx")
			return nil
		},
		InstanceTeardown: func(inst *fltmgr.Instance) { l.add("teardown") },
		ContextCleanup:   func(ctx any) { l.add("cleanup %v", ctx) },
		Operations: []fltmgr.Operation{{Major: iomgr.MajorCreate, Post: func(inst *fltmgr.Instance, d *fltmgr.CallbackData, _ any, _ bool) fltmgr.PostopStatus {
			if inst.StreamContext(d.FileObject) == nil {
				inst.SetStreamContext(d.FileObject, "stream-ctx")
			}
			return fltmgr.PostopFinishedProcessing
		}}},
	}
	if _, err := w.fm.Register(reg); err != nil {
		t.Fatal(err)
	}
	fo := w.Open(t)
	insts := w.fm.Instances(w.Volume)
	if len(insts) != 1 || insts[0].Context() != "instance-ctx" || insts[0].StreamContext(fo) != "stream-ctx" {
		t.Fatalf("contexts %v", insts)
	}
	fo.CloseHandle("test")
	if got := l.take(); fmt.Sprint(got) != "[cleanup stream-ctx]" {
		t.Fatalf("after the last close: %q", got)
	}
	if err := w.Mounts.Dismount(w.Volume, mount.DismountOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := l.take(); fmt.Sprint(got) != "[teardown cleanup instance-ctx]" {
		t.Fatalf("after dismount: %q", got)
	}
}

func TestManualAttachAndDetach(t *testing.T) {
	w := newWorld(t)
	l := &log{}
	r := recording(l, "manual", "300000", fltmgr.PreopSuccessNoCallback)
	r.ManualAttach = true
	w.fm.Register(r)
	fo := w.Open(t)
	defer fo.CloseHandle("test")
	w.read(t, fo)
	if got := l.take(); len(got) != 0 {
		t.Fatalf("unattached filter ran: %q", got)
	}
	if _, err := w.fm.Attach("manual", w.Volume); err != nil {
		t.Fatal(err)
	}
	if _, err := w.fm.Attach("manual", w.Volume); !errors.Is(err, fltmgr.ErrAlreadyAttached) {
		t.Fatal(err)
	}
	w.read(t, fo)
	if got := l.take(); fmt.Sprint(got) != "[pre manual]" {
		t.Fatalf("got %q", got)
	}
	if err := w.fm.Detach("manual", w.Volume); err != nil {
		t.Fatal(err)
	}
	w.read(t, fo)
	if got := l.take(); len(got) != 0 {
		t.Fatalf("detached filter ran: %q", got)
	}
}

// fakeFastIO is a file system fast I/O read that always succeeds.
func TestDisallowFastIOMakesTheCallNotPossible(t *testing.T) {
	w := newWorld(t)
	fo := w.Open(t)
	defer fo.CloseHandle("test")
	// RAW has no fast I/O: give the frame's lower a fast read by wrapping.
	fsVol, _ := w.Volume.VPB().Device()
	fsVol.Driver.FastIO = &iomgr.FastIODispatch{Read: func(dev *iomgr.Device, fo *iomgr.FileObject, off int64, buf []byte, wait bool, ios *iomgr.IOStatusBlock) bool {
		*ios = iomgr.IOStatusBlock{Status: iomgr.StatusSuccess, Information: uint64(len(buf))}
		return true
	}}
	deny := false
	w.fm.Register(fltmgr.Registration{Name: "nofast", Altitude: "300000", Operations: []fltmgr.Operation{{Major: iomgr.MajorRead,
		Pre: func(inst *fltmgr.Instance, d *fltmgr.CallbackData) (fltmgr.PreopStatus, any) {
			if deny && d.FastIO {
				return fltmgr.PreopDisallowFastIO, nil
			}
			return fltmgr.PreopSuccessNoCallback, nil
		}}}})
	top := iomgr.RelatedDevice(fo)
	var ios iomgr.IOStatusBlock
	if !top.Driver.FastIO.Read(top, fo, 0, make([]byte, 512), true, &ios) || ios.Information != 512 {
		t.Fatalf("fast read not served: %+v", ios)
	}
	deny = true
	if top.Driver.FastIO.Read(top, fo, 0, make([]byte, 512), true, &ios) {
		t.Fatal("fast read served although a minifilter disallowed fast I/O")
	}
}
