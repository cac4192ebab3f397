package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/control"
)

// controlFlags are the flags of the commands that talk to a running
// `vdisk serve --control SOCKET`: the socket, and how long to wait for a
// server that is still starting (a script that starts `vdisk serve &` and
// goes on at once would otherwise race it).
func controlFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "control", Usage: "the control `SOCKET` of a running vdisk serve --control SOCKET"},
		&cli.DurationFlag{Name: "wait", Usage: "wait up to `DURATION` (e.g. 10s) for a server that is still starting"},
	}
}

// controlClient returns a client for the command's --control socket, or a
// usage error naming the command when it was not given. With --wait it
// first waits, within that time, until a server answers on the socket.
func controlClient(c *cli.Context, command string) (*control.Client, error) {
	sock := c.String("control")
	if sock == "" {
		return nil, usagef("%s: give --control SOCKET, the control socket of a running `vdisk serve --control SOCKET`", command)
	}
	cl := control.NewClient(sock)
	if d := c.Duration("wait"); d > 0 {
		ctx, cancel := signalContext()
		defer cancel()
		if err := cl.WaitReady(ctx, d); err != nil {
			cl.Close()
			return nil, err
		}
	}
	return cl, nil
}

// signalContext is a context cancelled by SIGINT or SIGTERM, so that a
// command waiting on the server stops cleanly when the user asks.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
