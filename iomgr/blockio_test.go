package iomgr_test

import (
	"bytes"
	"testing"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// sent is what a recording driver saw of one request.
type sent struct {
	major        iomgr.MajorFunction
	minor        iomgr.MinorFunction
	slFlags      uint8
	irpFlags     iomgr.IRPFlags
	length       uint32
	offset       int64
	fo, slFO     *iomgr.FileObject
	requestor    string
	mode         iomgr.ProcessorMode
	code         uint32
	input        any
	output       any
	dev          *iomgr.Device
	bufferLength int
}

// newRecordingDisk returns a disk device whose driver records each request
// into *got and completes it; an MDL read is answered with lent.
func newRecordingDisk(t *testing.T, m *iomgr.Manager, got *sent, lent []byte) *iomgr.Device {
	t.Helper()
	drv := m.CreateDriver(`\Driver\Recording`)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		*got = sent{major: sl.Major, minor: sl.Minor, slFlags: sl.Flags, irpFlags: irp.Flags, fo: irp.FileObject, slFO: sl.FileObject,
			requestor: irp.Requestor, mode: irp.RequestorMode, dev: dev, bufferLength: len(irp.Buffer)}
		if p := sl.Transfer(); p != nil {
			got.length, got.offset = p.Length, p.ByteOffset
		}
		if sl.Major == iomgr.MajorDeviceControl {
			got.code, got.input, got.output = sl.Parameters.DeviceIoControl.ControlCode, sl.Parameters.DeviceIoControl.Input, irp.SystemBuffer
		}
		if sl.Major == iomgr.MajorRead && sl.Minor == iomgr.MinorMDL {
			irp.Buffer = lent
		}
		return irp.Complete(iomgr.StatusSuccess, uint64(got.length))
	})
	disk, err := m.CreateDevice(drv, `\Device\Recording`, iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	disk.SectorSize = 512
	disk.ClearFlags(iomgr.DeviceInitializing)
	return disk
}

// TestBlockIOSendCarriesTheRequest: every part of a BlockRequest and of the
// BlockIO reaches the driver at the top of the stack as NT's IRP fields,
// and an MDL read returns the memory the driver lent.
func TestBlockIOSendCarriesTheRequest(t *testing.T) {
	m := iomgr.NewManager()
	var got sent
	lent := []byte("lent by the disk")
	disk := newRecordingDisk(t, m, &got, lent)
	rec := &recorder{}
	attachFilter(t, m, newFilterDriver(m, "top"), disk, "top", rec)
	fo := &iomgr.FileObject{FileName: `\stream`}
	b := iomgr.BlockIO{Device: disk, Requestor: "nbd 127.0.0.1:1", FileObject: fo,
		Flags: iomgr.IRPPagingIO | iomgr.IRPNoCache, RequestorMode: iomgr.UserMode}

	buf := make([]byte, 4096)
	ios, back := b.Send(iomgr.BlockRequest{Major: iomgr.MajorWrite, Buffer: buf, Offset: 8192, WriteThrough: true})
	want := sent{major: iomgr.MajorWrite, slFlags: iomgr.SLWriteThrough, irpFlags: iomgr.IRPWriteOperation | iomgr.IRPPagingIO | iomgr.IRPNoCache,
		length: 4096, offset: 8192, fo: fo, slFO: fo, requestor: "nbd 127.0.0.1:1", mode: iomgr.UserMode, dev: disk, bufferLength: 4096}
	if got != want || ios.Status != iomgr.StatusSuccess || ios.Information != 4096 || &back[0] != &buf[0] {
		t.Fatalf("write-through write:\n got  %+v\n want %+v\n status %+v", got, want, ios)
	}
	if ev := rec.get(); len(ev) != 2 || ev[0] != "dispatch top" {
		t.Fatalf("the filter on top of the stack saw %q, want the write", ev)
	}

	ios, back = b.Send(iomgr.BlockRequest{Major: iomgr.MajorRead, Minor: iomgr.MinorMDL, Length: len(lent), Offset: 512})
	want = sent{major: iomgr.MajorRead, minor: iomgr.MinorMDL, irpFlags: iomgr.IRPReadOperation | iomgr.IRPPagingIO | iomgr.IRPNoCache,
		length: uint32(len(lent)), offset: 512, fo: fo, slFO: fo, requestor: "nbd 127.0.0.1:1", mode: iomgr.UserMode, dev: disk}
	if got != want || ios.Status != iomgr.StatusSuccess || !bytes.Equal(back, lent) {
		t.Fatalf("MDL read:\n got  %+v\n want %+v\n status %+v, lent %q", got, want, ios, back)
	}

	in, out := new(int), new(int)
	b2 := iomgr.BlockIO{Device: disk, Requestor: "vdisk", Here: true}
	if err := b2.Control(0x70000, in, out); err != nil {
		t.Fatal(err)
	}
	want = sent{major: iomgr.MajorDeviceControl, code: 0x70000, input: in, output: out, requestor: "vdisk", dev: disk}
	if got != want {
		t.Fatalf("device control:\n got  %+v\n want %+v", got, want)
	}
	if err := b2.Flush(); err != nil || got.major != iomgr.MajorFlushBuffers || got.irpFlags != 0 {
		t.Fatalf("flush: %v, driver saw %+v", err, got)
	}
	if ev := rec.get(); len(ev) != 4 {
		t.Fatalf("the filter above the device saw %q, want the write and the MDL read, not the requests sent Here", ev)
	}
}
