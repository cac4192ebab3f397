package builtin

import (
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func init() {
	register(&Filter{
		Name: "readonly",
		Kind: Minifilter,
		Help: "refuses every write-class file operation (STATUS_MEDIA_WRITE_PROTECTED)",
		Minifilter: func(Spec, Host) (fltmgr.Registration, error) {
			return readOnly(), nil
		},
	})
}

// readOnlyAltitude is below the anti-virus range: scan sees the refused
// writes' data first.
const readOnlyAltitude = "280000"

// writeAccess is the access that makes an open "for writing".
const writeAccess = iomgr.FileWriteData | iomgr.FileAppendData | iomgr.FileWriteAttributes | iomgr.FileWriteEA |
	iomgr.Delete | iomgr.GenericWrite | iomgr.GenericAll

// readOnly returns the readonly minifilter: every write-class operation
// fails with STATUS_MEDIA_WRITE_PROTECTED.
func readOnly() fltmgr.Registration {
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
	reg := fltmgr.Registration{Name: "readonly", Altitude: readOnlyAltitude, Operations: []fltmgr.Operation{
		{Major: iomgr.MajorCreate, Pre: create},
	}}
	for _, mj := range []iomgr.MajorFunction{iomgr.MajorWrite, iomgr.MajorSetInformation, iomgr.MajorSetEA,
		iomgr.MajorSetVolumeInformation, iomgr.MajorSetSecurity, iomgr.MajorSetQuota} {
		reg.Operations = append(reg.Operations, fltmgr.Operation{Major: mj, Pre: deny})
	}
	return reg
}
