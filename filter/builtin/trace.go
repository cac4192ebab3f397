package builtin

import "github.com/vdisk-dev/vdisk/filter/monitor"

func init() {
	register(&Filter{
		Name:   "trace",
		Kind:   DiskLevel,
		Params: []string{"on"},
		Help:   "records every request to the disk into the monitor ring (vdisk monitor, --trace)",
		Disk: func(_ Spec, host Host) (DeviceDispatch, error) {
			return everyDevice(monitor.TraceDispatch(host.Ring())), nil
		},
	})
}
