package main

import (
	"encoding/json"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk"
)

func stackCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "stack",
		Usage:     "show the device stacks: drivers, devices, attachments, VPBs, filters",
		ArgsUsage: "IMAGE...",
		Description: `Example:
   vdisk stack disk.img --filter monitor --filter trace
   vdisk stack disk.img --dot | dot -Tpng > stack.png`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dot", Usage: "print Graphviz"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.BoolFlag{Name: "mount", Usage: "mount every volume first, so file system stacks show"},
		},
		Action: func(c *cli.Context) (err error) {
			if c.NArg() < 1 {
				return usagef("stack: name at least one IMAGE")
			}
			s := newSession("vdisk stack", false)
			defer func() { err = s.close(err) }()
			var addrs []vdisk.Address
			for _, path := range c.Args().Slice() {
				addrs = append(addrs, vdisk.Address{Image: path})
			}
			if err := s.open(c, addrs...); err != nil {
				return err
			}
			for _, img := range s.sys.Images() {
				path := img.Path
				if c.Bool("mount") {
					for i := range img.Volumes {
						name := img.Name
						if len(img.Partitions) > 0 {
							name = vdisk.Address{Image: path, Partition: i + 1}.VolumeName()
						}
						if v, err := s.sys.OpenVolume(name, "vdisk stack"); err == nil {
							_, _ = v.Info()
						}
					}
				}
			}
			info := s.sys.Stack()
			switch {
			case c.Bool("json"):
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			case c.Bool("dot"):
				info.WriteDot(os.Stdout)
			default:
				info.WriteText(os.Stdout)
			}
			return nil
		},
	})
}
