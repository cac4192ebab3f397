package volume

import (
	"strings"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// DosName is the name a storage volume device goes by for users: its
// \DosDevices link without the prefix (`disk@1`, as vdisk's CLI, exports
// and control API spell volumes), or the device's own name when it has no
// such link.
func DosName(v *iomgr.Device) string {
	if ext, ok := v.Extension.(*Extension); ok {
		for _, l := range ext.Links {
			if n, ok := strings.CutPrefix(l, `\DosDevices\`); ok {
				return n
			}
		}
	}
	return v.String()
}
