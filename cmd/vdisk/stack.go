package main

import (
	"os"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/stackview"
)

func stackCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "stack",
		Usage:     "show the device stacks: drivers, devices, attachments, VPBs, filters",
		ArgsUsage: "IMAGE... | --control SOCKET",
		Description: `Offline, the stacks of a System built over the images (with --filter and
--mount); with --control, those of a running server. --json prints
{"devices": [{"name", "driver", "type", "flags", "stack_size",
"attached_to" (a device name, or "" at the bottom), "vpb" (null, or
{"flags", "mounted", "volume_device", "reference_count", "serial",
"label"})}]}.

Examples:
   vdisk stack disk.img --filter monitor --filter trace
   vdisk stack disk.img --dot | dot -Tpng > stack.png
   vdisk stack disk.img --mount --filter monitor --html > stack.html
   vdisk stack --control /tmp/vdisk.sock --json`,
		Flags: append(controlFlags(),
			&cli.BoolFlag{Name: "dot", Usage: "print Graphviz"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.BoolFlag{Name: "svg", Usage: "print an SVG drawing of the stacks (no Graphviz needed)"},
			&cli.BoolFlag{Name: "html", Usage: "print a standalone HTML page with the SVG drawing"},
			&cli.BoolFlag{Name: "mount", Usage: "mount every volume first, so file system stacks show"},
		),
		Action: func(c *cli.Context) (err error) {
			if c.String("control") != "" {
				if c.NArg() > 0 || c.Bool("mount") {
					return usagef("stack: give IMAGE... (offline) or --control SOCKET (a running server), not both")
				}
				if len(c.StringSlice("filter")) > 0 || c.Bool("trace") {
					return usagef("stack: --filter and --trace load filters offline; a running server takes vdisk filter attach")
				}
				cl, err := controlClient(c, "stack")
				if err != nil {
					return err
				}
				defer cl.Close()
				ctx, cancel := signalContext()
				defer cancel()
				info, err := cl.Stack(ctx)
				if err != nil {
					return err
				}
				return printStack(c, info)
			}
			if c.NArg() < 1 {
				return usagef("stack: name at least one IMAGE, or a running server's --control SOCKET")
			}
			s := newSession("vdisk stack", false, true)
			defer func() { err = s.close(err) }()
			var addrs []Address
			for _, path := range c.Args().Slice() {
				addrs = append(addrs, Address{Image: path})
			}
			if err := s.open(c, addrs...); err != nil {
				return err
			}
			if c.Bool("mount") {
				for _, v := range s.sys.Volumes() {
					_, _ = v.Info() // mounts it, or leaves it to RAW
				}
			}
			return printStack(c, s.sys.Stack())
		},
	})
}

// printStack prints the stacks as --json, --dot, --svg, --html or the text
// tree ask.
func printStack(c *cli.Context, info stackview.Info) error {
	n := 0
	for _, f := range []string{"json", "dot", "svg", "html"} {
		if c.Bool(f) {
			n++
		}
	}
	if n > 1 {
		return usagef("stack: --json, --dot, --svg and --html each choose the output: give one")
	}
	switch {
	case c.Bool("json"):
		return printJSON(info)
	case c.Bool("dot"):
		info.WriteDot(os.Stdout)
	case c.Bool("svg"):
		return info.WriteSVG(os.Stdout)
	case c.Bool("html"):
		return info.WriteHTML(os.Stdout)
	default:
		info.WriteText(os.Stdout)
	}
	return nil
}
