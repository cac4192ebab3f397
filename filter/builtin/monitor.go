package builtin

import (
	"github.com/vdisk-dev/vdisk/filter/fltmgr"
	"github.com/vdisk-dev/vdisk/filter/monitor"
)

func init() {
	register(&Filter{
		Name: "monitor",
		Kind: Minifilter,
		Help: "records every file operation on mounted volumes into the monitor ring (vdisk monitor)",
		Minifilter: func(_ Spec, host Host) (fltmgr.Registration, error) {
			return monitor.Registration(host.Ring()), nil
		},
	})
}
