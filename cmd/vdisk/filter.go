package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/filter/builtin"
)

func filterCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:  "filter",
		Usage: "list, attach and detach filters in a running server",
		Description: `Minifilters join the filter manager and attach to every mounted volume;
disk filters attach on top of the disk stacks (on=EXPORT narrows them to one
disk or partition). Detach takes the ID that list shows (or a filter's name
when only one of that name is loaded). A disk filter leaves only from the
top of its stacks: detach is last in, first out.

Built-in filters (a spec is NAME[:key=value,...]):
` + builtinHelp() + `
Examples:
   vdisk filter list --control /tmp/vdisk.sock
   vdisk filter attach trace --control /tmp/vdisk.sock
   vdisk filter attach 'faults:on=disk@1,write-error=0.01' --control /tmp/vdisk.sock
   vdisk filter detach trace1 --control /tmp/vdisk.sock`,
		Flags: append(controlFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
		// Runs only when no subcommand matched.
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("filter: want list, attach SPEC... or detach ID...")
			}
			return usagef("filter: unknown subcommand %q (want list, attach or detach)", c.Args().First())
		},
		Subcommands: []*cli.Command{
			withUsage(&cli.Command{
				Name:  "list",
				Usage: "list the loaded filters",
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return usagef("filter list: takes no arguments (got %q)", c.Args().First())
					}
					cl, err := controlClient(c, "filter list")
					if err != nil {
						return err
					}
					defer cl.Close()
					ctx, cancel := signalContext()
					defer cancel()
					list, err := cl.Filters(ctx)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(map[string]any{"filters": list})
					}
					tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tKIND\tSPEC\tON")
					for _, f := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.ID, f.Kind, f.Spec, filterWhere(f))
					}
					return tw.Flush()
				},
			}),
			withUsage(&cli.Command{
				Name:      "attach",
				Usage:     "load filters into the running server",
				ArgsUsage: "SPEC...",
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return usagef("filter attach: name at least one filter SPEC (NAME[:key=value,...])")
					}
					cl, err := controlClient(c, "filter attach")
					if err != nil {
						return err
					}
					defer cl.Close()
					ctx, cancel := signalContext()
					defer cancel()
					var done []control.FilterInfo
					for _, spec := range c.Args().Slice() {
						f, err := cl.AttachFilter(ctx, spec)
						if err != nil {
							return err
						}
						done = append(done, f)
						if !c.Bool("json") {
							fmt.Printf("attached %s (%s filter; on %s)\n", f.ID, f.Kind, filterWhere(f))
						}
					}
					if c.Bool("json") {
						return printJSON(map[string]any{"filters": done})
					}
					return nil
				},
			}),
			withUsage(&cli.Command{
				Name:      "detach",
				Usage:     "unload filters from the running server (last in, first out)",
				ArgsUsage: "ID...",
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return usagef("filter detach: name at least one filter ID (see vdisk filter list)")
					}
					cl, err := controlClient(c, "filter detach")
					if err != nil {
						return err
					}
					defer cl.Close()
					ctx, cancel := signalContext()
					defer cancel()
					for _, id := range c.Args().Slice() {
						if err := cl.DetachFilter(ctx, id); err != nil {
							return err
						}
						if !c.Bool("json") {
							fmt.Printf("detached %s\n", id)
						}
					}
					if c.Bool("json") {
						return printJSON(map[string]any{"detached": c.Args().Slice()})
					}
					return nil
				},
			}),
		},
	})
}

// builtinNames lists the built-in filters in the registry's order.
func builtinNames() []string {
	var names []string
	for _, f := range builtin.Filters() {
		names = append(names, f.Name)
	}
	return names
}

// builtinHelp is one line per built-in filter: its name, kind and what it
// does, and the keys of its spec.
func builtinHelp() string {
	var b strings.Builder
	for _, f := range builtin.Filters() {
		fmt.Fprintf(&b, "   %-12s %-10s  %s", f.Name, f.Kind, f.Help)
		if len(f.Params) > 0 {
			fmt.Fprintf(&b, " (keys: %s)", strings.Join(f.Params, ", "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// completeFilterSpec prints the built-in filter names that start with
// word, for --filter and filter attach.
func completeFilterSpec(w io.Writer, word string) {
	for _, name := range builtinNames() {
		if strings.HasPrefix(name, word) {
			fmt.Fprintln(w, name)
		}
	}
}

// filterWhere says where a filter is attached.
func filterWhere(f control.FilterInfo) string {
	var on []string
	for _, d := range f.Devices {
		s := d.On
		if d.AttachedTo != d.On {
			s += " (over " + d.AttachedTo + ")"
		}
		if d.Below != "" {
			s += " (under " + d.Below + ")"
		}
		on = append(on, s)
	}
	on = append(on, f.Volumes...)
	if len(on) == 0 {
		if f.Kind == "minifilter" {
			return "every volume mounted from now on"
		}
		return "-"
	}
	return strings.Join(on, ", ")
}

// filterSpecs returns the filters a command loads: those of --filter and,
// with --trace, the monitor and the disk trace, once each whether or not
// --filter named them too (a second monitor could not register).
func filterSpecs(c *cli.Context) []string {
	specs := c.StringSlice("filter")
	if c.Bool("trace") {
		for _, need := range []string{"monitor", "trace"} {
			if !slices.ContainsFunc(specs, func(sp string) bool { name, _, _ := strings.Cut(sp, ":"); return name == need }) {
				specs = append(specs, need)
			}
		}
	}
	return specs
}
