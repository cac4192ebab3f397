package builtin

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func init() {
	register(&Filter{
		Name:   "scan",
		Kind:   Minifilter,
		Params: []string{"sig", "on"},
		Help:   "refuses writes (and opens for reading) of data holding a signature; at disk level with on=EXPORT",
		Minifilter: func(spec Spec, _ Host) (fltmgr.Registration, error) {
			sigs, err := scanSigs(spec)
			if err != nil {
				return fltmgr.Registration{}, err
			}
			return scanMinifilter(sigs), nil
		},
		Disk: func(spec Spec, _ Host) (DeviceDispatch, error) {
			sigs, err := scanSigs(spec)
			if err != nil {
				return nil, err
			}
			return everyDevice(scanDisk(sigs)), nil
		},
	})
}

// scanAltitude is in the anti-virus range.
const scanAltitude = "320000"

// scanState is what scan remembers of each open: whether the open created
// the file (so a refused first write can take the file away again).
type scanState struct {
	mu      sync.Mutex
	created map[*iomgr.FileObject]bool
	refused map[*iomgr.FileObject]bool
}

// scanMinifilter returns the scan minifilter (the seeds' virus scanner): a write whose
// data contains one of sigs fails with STATUS_ACCESS_DENIED, and a file that
// the refused write's open created is deleted when that handle closes, so
// nothing is left behind; a file opened for reading is scanned and the open
// fails with STATUS_ACCESS_DENIED if it holds a signature.
func scanMinifilter(sigs [][]byte) fltmgr.Registration {
	st := &scanState{created: map[*iomgr.FileObject]bool{}, refused: map[*iomgr.FileObject]bool{}}
	longest := 0
	for _, s := range sigs {
		longest = max(longest, len(s))
	}
	preWrite := func(_ *fltmgr.Instance, d *fltmgr.CallbackData) (fltmgr.PreopStatus, any) {
		n := int(d.Params.Transfer().Length)
		if n <= len(d.Buffer) && containsAny(d.Buffer[:n], sigs) {
			if d.FileObject != nil {
				st.mu.Lock()
				st.refused[d.FileObject] = true
				st.mu.Unlock()
			}
			d.IOStatus = iomgr.IOStatusBlock{Status: iomgr.StatusAccessDenied}
			return fltmgr.PreopComplete, nil
		}
		return fltmgr.PreopSuccessNoCallback, nil
	}
	postCreate := func(inst *fltmgr.Instance, d *fltmgr.CallbackData, _ any, _ bool) fltmgr.PostopStatus {
		fo := d.FileObject
		if !d.IOStatus.Status.IsSuccess() || fo == nil || fo.FileName == "" {
			return fltmgr.PostopFinishedProcessing
		}
		if d.IOStatus.Information == iomgr.FileCreated {
			st.mu.Lock()
			st.created[fo] = true
			st.mu.Unlock()
		}
		if fo.ReadAccess && d.IOStatus.Information == iomgr.FileOpened && scanFile(inst, fo, d.Requestor, sigs, longest) {
			// Undo the open below us: the I/O manager will not close a
			// file object whose create failed.
			lowerSimple(inst, fo, iomgr.MajorCleanup, d.Requestor)
			lowerSimple(inst, fo, iomgr.MajorClose, d.Requestor)
			d.IOStatus = iomgr.IOStatusBlock{Status: iomgr.StatusAccessDenied}
		}
		return fltmgr.PostopFinishedProcessing
	}
	preCleanup := func(inst *fltmgr.Instance, d *fltmgr.CallbackData) (fltmgr.PreopStatus, any) {
		fo := d.FileObject
		st.mu.Lock()
		remove := st.created[fo] && st.refused[fo]
		delete(st.created, fo)
		delete(st.refused, fo)
		st.mu.Unlock()
		if remove {
			lowerSetDisposition(inst, fo, d.Requestor)
		}
		return fltmgr.PreopSuccessNoCallback, nil
	}
	return fltmgr.Registration{Name: "scan", Altitude: scanAltitude, Operations: []fltmgr.Operation{
		{Major: iomgr.MajorCreate, Post: postCreate},
		{Major: iomgr.MajorWrite, Pre: preWrite},
		{Major: iomgr.MajorCleanup, Pre: preCleanup},
	}}
}

// frameLower is the device beneath the filter manager's frame: where a
// minifilter sends requests of its own.
func frameLower(inst *fltmgr.Instance) *iomgr.Device {
	return inst.Frame.Extension.(*filter.Extension).Lower
}

func lowerSend(inst *fltmgr.Instance, fo *iomgr.FileObject, requestor string, irp *iomgr.IRP) iomgr.IOStatusBlock {
	dev := frameLower(inst)
	irp.FileObject = fo
	irp.Requestor = requestor
	irp.NextStackLocation().FileObject = fo
	ios := iomgr.CallDriverAndWait(dev, irp)
	iomgr.FreeIRP(irp)
	return ios
}

func lowerSimple(inst *fltmgr.Instance, fo *iomgr.FileObject, major iomgr.MajorFunction, requestor string) {
	lowerSend(inst, fo, requestor, iomgr.BuildSynchronousRequest(major, 0, frameLower(inst)))
}

func lowerSetDisposition(inst *fltmgr.Instance, fo *iomgr.FileObject, requestor string) {
	irp := iomgr.BuildSynchronousRequest(iomgr.MajorSetInformation, 0, frameLower(inst))
	irp.SystemBuffer = &iomgr.FileDispositionInformation{DeleteFile: true}
	irp.NextStackLocation().Parameters.SetFile = iomgr.SetFileParameters{Class: iomgr.FileDispositionInformationClass}
	lowerSend(inst, fo, requestor, irp)
}

// scanFile reads the file below the filter and reports whether it holds a
// signature (one spanning two reads is found too).
func scanFile(inst *fltmgr.Instance, fo *iomgr.FileObject, requestor string, sigs [][]byte, longest int) bool {
	const chunk = 256 << 10
	buf := make([]byte, chunk+longest)
	carry := 0
	for off := int64(0); ; {
		irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, frameLower(inst), buf[carry:carry+chunk], off)
		ios := lowerSend(inst, fo, requestor, irp)
		n := int(ios.Information)
		if n > 0 && containsAny(buf[:carry+n], sigs) {
			return true
		}
		if !ios.Status.IsSuccess() || n < chunk {
			return false
		}
		off += int64(n)
		keep := min(longest, carry+n)
		copy(buf, buf[carry+n-keep:carry+n])
		carry = keep
	}
}

// scanSigs returns the sig= parameters as byte strings; a scan without
// one is refused.
func scanSigs(spec Spec) ([][]byte, error) {
	var sigs [][]byte
	for _, s := range spec.Params["sig"] {
		if s != "" {
			sigs = append(sigs, []byte(s))
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("filter %q: give at least one sig=STRING", spec.Raw)
	}
	return sigs, nil
}

// scanDisk returns the disk-level scan dispatch: a write whose data contains
// one of sigs fails with STATUS_ACCESS_DENIED and nothing is written.
func scanDisk(sigs [][]byte) iomgr.DispatchFunc {
	return func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		if sl.Major == iomgr.MajorWrite && containsAny(irp.Buffer[:sl.Transfer().Length], sigs) {
			return irp.Complete(iomgr.StatusAccessDenied, 0)
		}
		return filter.PassThrough(dev, irp)
	}
}

func containsAny(b []byte, sigs [][]byte) bool {
	for _, s := range sigs {
		if len(s) > 0 && bytes.Contains(b, s) {
			return true
		}
	}
	return false
}
