package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/filter/monitor"
)

// errEnough stops the stream once --count records are printed.
var errEnough = errors.New("enough records")

func monitorCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:  "monitor",
		Usage: "live IRP trace of a running server",
		Description: `Prints each operation as the server's monitor filters record it: sequence
number, time, requestor, layer, operation, path (or DIRECT I/O) with offset
and length, status and duration. A line says where the server's ring
dropped records this reader had not got yet. With --json each record is one
JSON object per line (fields seq, time, requestor, operation, layer,
device, path, offset, length, status, duration_ns, fast_io); a jump in seq
is a gap. Stops on Ctrl-C, when the server stops, or after --count records;
with --no-follow, after the records the server holds.

Records come from the monitor minifilter (file operations on mounted
volumes) and the trace disk filter (everything on the disks, NBD included):
serve with --filter monitor --filter trace, or attach them with
vdisk filter attach.

Examples:
   vdisk monitor --control /tmp/vdisk.sock
   vdisk monitor --control /tmp/vdisk.sock --json | jq 'select(.layer == "disk")'`,
		Flags: append(controlFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
			&cli.Uint64Flag{Name: "from", Usage: "start at this sequence number (1: everything the server still holds); default: new records only"},
			&cli.IntFlag{Name: "count", Usage: "stop after this many records (0: never)"},
			&cli.BoolFlag{Name: "no-follow", Usage: "print the records the server holds now (see --from) and stop"}),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("monitor: takes no arguments (got %q)", c.Args().First())
			}
			if c.Int("count") < 0 {
				return usagef("monitor: --count %d: give a number of records, or 0 for no limit", c.Int("count"))
			}
			cl, err := controlClient(c, "monitor")
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			filters, err := cl.Filters(ctx)
			if err != nil {
				return err
			}
			recording := false
			for _, f := range filters {
				recording = recording || f.Name == "monitor" || f.Name == "trace"
			}
			if !recording {
				fmt.Fprintf(os.Stderr, "vdisk: monitor: no monitor or trace filter is loaded, so nothing is recorded: try vdisk filter attach monitor --control %s\n", cl.Socket)
			}
			text := &recordWriter{w: os.Stdout, next: c.Uint64("from")}
			enc := json.NewEncoder(os.Stdout)
			left := c.Int("count")
			opts := control.MonitorOptions{From: c.Uint64("from"), NoFollow: c.Bool("no-follow")}
			err = cl.Monitor(ctx, opts, func(r monitor.Record) error {
				var err error
				if c.Bool("json") {
					err = enc.Encode(r)
				} else {
					err = text.write(r)
				}
				if err == nil && left > 0 {
					if left--; left == 0 {
						return errEnough
					}
				}
				return err
			})
			if errors.Is(err, errEnough) {
				return nil
			}
			if err != nil {
				return err
			}
			if ctx.Err() == nil && !opts.NoFollow {
				fmt.Fprintln(os.Stderr, "vdisk: monitor: the server ended the stream")
			}
			return nil
		},
	})
}
