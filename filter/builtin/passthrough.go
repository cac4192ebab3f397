package builtin

import "github.com/vdisk-dev/vdisk/filter"

func init() {
	register(&Filter{
		Name:   "passthrough",
		Kind:   DiskLevel,
		Params: []string{"on"},
		Help:   "passes every request on and does nothing else: the cost of one layer, for benchmarks",
		Disk: func(Spec, Host) (DeviceDispatch, error) {
			return everyDevice(filter.PassThrough), nil
		},
	})
}
