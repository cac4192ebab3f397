package builtin

import (
	"sync"

	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// Altitudes of the built-in minifilters, in the ranges Windows assigns to
// their kinds of filter.
const (
	ScanAltitude     = "320000" // anti-virus range
	ReadOnlyAltitude = "280000" // below anti-virus: scan sees the refused writes' data first
)

// writeAccess is the access that makes an open "for writing".
const writeAccess = iomgr.FileWriteData | iomgr.FileAppendData | iomgr.FileWriteAttributes | iomgr.FileWriteEA |
	iomgr.Delete | iomgr.GenericWrite | iomgr.GenericAll

// ReadOnly returns the readonly minifilter: every write-class operation
// fails with STATUS_MEDIA_WRITE_PROTECTED.
func ReadOnly() fltmgr.Registration {
	deny := func(_ *fltmgr.Instance, d *fltmgr.CallbackData) (fltmgr.PreopStatus, any) {
		d.IOStatus = iomgr.IOStatusBlock{Status: iomgr.StatusMediaWriteProtected}
		return fltmgr.PreopComplete, nil
	}
	create := func(inst *fltmgr.Instance, d *fltmgr.CallbackData) (fltmgr.PreopStatus, any) {
		p := d.Params.Parameters.Create
		if p.DesiredAccess&writeAccess != 0 || p.Disposition != iomgr.FileOpen && p.Disposition != iomgr.FileOpenIf ||
			p.Options&iomgr.FileDeleteOnClose != 0 {
			return deny(inst, d)
		}
		return fltmgr.PreopSuccessNoCallback, nil
	}
	reg := fltmgr.Registration{Name: "readonly", Altitude: ReadOnlyAltitude, Operations: []fltmgr.Operation{
		{Major: iomgr.MajorCreate, Pre: create},
	}}
	for _, mj := range []iomgr.MajorFunction{iomgr.MajorWrite, iomgr.MajorSetInformation, iomgr.MajorSetEA,
		iomgr.MajorSetVolumeInformation, iomgr.MajorSetSecurity, iomgr.MajorSetQuota} {
		reg.Operations = append(reg.Operations, fltmgr.Operation{Major: mj, Pre: deny})
	}
	return reg
}

// scanState is what scan remembers of each open: whether the open created
// the file (so a refused first write can take the file away again).
type scanState struct {
	mu      sync.Mutex
	created map[*iomgr.FileObject]bool
	refused map[*iomgr.FileObject]bool
}

// Scan returns the scan minifilter (the seeds' virus scanner): a write whose
// data contains one of sigs fails with STATUS_ACCESS_DENIED, and a file that
// the refused write's open created is deleted when that handle closes, so
// nothing is left behind; a file opened for reading is scanned and the open
// fails with STATUS_ACCESS_DENIED if it holds a signature.
func Scan(sigs [][]byte) fltmgr.Registration {
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
	return fltmgr.Registration{Name: "scan", Altitude: ScanAltitude, Operations: []fltmgr.Operation{
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

// ParseSigs returns the sig= parameters as byte strings.
func ParseSigs(spec Spec) [][]byte {
	var sigs [][]byte
	for _, s := range spec.Params["sig"] {
		if s != "" {
			sigs = append(sigs, []byte(s))
		}
	}
	return sigs
}
