package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/web"
)

func serveCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "serve",
		Usage:     "serve images and their partitions over NBD",
		ArgsUsage: "IMAGE...",
		Description: `Exports for disk.img: "disk" (whole disk) and "disk@1", "disk@2", ... (one per
partition); the first image's whole disk is also the default export "".
Every request travels as an IRP down the image's device stack.

An IMAGE rbd:POOL/IMAGE is a Ceph RBD image (--ceph-conf, --ceph-id), exported as
IMAGE, IMAGE@1, ...; served writable, the server holds the image's exclusive lock
until it exits, so a second writer anywhere is refused, naming this server's
client. rbd:POOL/IMAGE@SNAP serves a snapshot read-only, as IMAGE.SNAP: any number
of servers may serve it, and a client may spread its connections over them
(NBD multi-conn). A head served --read-only takes no lock, and others may
write it meanwhile, so its exports do not offer multi-conn.

With --control SOCKET the server also answers its control API (HTTP+JSON on
a unix socket only you can use): vdisk mount, dismount, stack, monitor and
filter take --control SOCKET. An NBD client that wrote to a volume keeps it
from being mounted while it is connected; while a volume is mounted, NBD
writes to it (or to its whole disk) fail with EPERM.

With --http ADDR (127.0.0.1:8080, or 127.0.0.1:0 for any free port) the
server also serves a web view: the device stacks drawn bottom-up, the live
IRP trace, a block map of each export and controls for mount, dismount,
lock, unlock and filters. It prints the address to open, with a random
token that every request needs (the page keeps it in a cookie). It listens
on loopback addresses only, unless --http-allow-remote.

SIGINT or SIGTERM stops accepting connections, lets NBD requests in flight
finish, flushes, dismounts mounted volumes, removes the control socket and
exits 0; a second signal exits at once.

Examples:
   vdisk serve disk.img                      # then: nbdinfo --list nbd://127.0.0.1
   vdisk serve disk.img --control /tmp/vdisk.sock --filter monitor --filter trace
   vdisk serve --listen unix:/tmp/nbd.sock --read-only a.img b.img
   vdisk serve rbd:rbd/golden@v1 --ceph-conf /etc/ceph/ceph.conf --listen 0.0.0.0:10809
   vdisk serve --demo                        # a built-in demo image
   vdisk serve disk.img --filter trace --http 127.0.0.1:8080   # then open the URL it prints`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "host:port or unix:/path", Value: nbd.DefaultAddr},
			&cli.BoolFlag{Name: "read-only", Usage: "export read-only"},
			&cli.BoolFlag{Name: "demo", Usage: "serve a built-in demo image created in a temporary directory: 64 MiB, GPT, an EFI system partition and a data partition, both FAT16, with a few files"},
			&cli.IntFlag{Name: "workers", Usage: "disk driver worker goroutines (0: complete requests in the NBD worker)", Value: 0},
			&cli.StringFlag{Name: "tls-cert", Usage: "PEM certificate: enables STARTTLS"},
			&cli.StringFlag{Name: "tls-key", Usage: "PEM private key for --tls-cert"},
			&cli.BoolFlag{Name: "tls-required", Usage: "refuse clients that do not use TLS"},
			&cli.BoolFlag{Name: "verbose", Usage: "log connection events to stderr"},
			&cli.StringSliceFlag{Name: "filter", Usage: "load a filter NAME[:key=value,...] (repeatable)"},
			&cli.StringFlag{Name: "control", Usage: "answer the control API on the unix `SOCKET` (created with mode 0600)"},
			&cli.StringFlag{Name: "http", Usage: "serve the web view (stacks, live trace, block map, controls) on `ADDR` (host:port, loopback only unless --http-allow-remote)"},
			&cli.BoolFlag{Name: "http-allow-remote", Usage: "let --http listen on an address other than loopback (anyone who gets the token controls the server)"},
		},
		Action: serve,
	})
}

func serve(c *cli.Context) error {
	images := c.Args().Slice()
	if c.Bool("demo") {
		dir, err := os.MkdirTemp("", "vdisk-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path, err := create.Demo(dir)
		if err != nil {
			return fmt.Errorf("demo image: %w", err)
		}
		images = append(images, path)
	}
	if len(images) == 0 {
		return usagef("serve: name at least one IMAGE (or use --demo)")
	}
	var tlsConfig *tls.Config
	if cert := c.String("tls-cert"); cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, c.String("tls-key"))
		if err != nil {
			return fmt.Errorf("serve: TLS certificate %s: %w", cert, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	} else if c.Bool("tls-required") {
		return usagef("serve: --tls-required needs --tls-cert and --tls-key")
	}
	if addr := c.String("http"); addr != "" {
		if err := web.CheckAddr(addr, c.Bool("http-allow-remote")); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	} else if c.Bool("http-allow-remote") {
		return usagef("serve: --http-allow-remote needs --http ADDR")
	}

	sys := vdisk.New(vdisk.Options{Workers: c.Int("workers"), Requestor: "vdisk serve"})
	closed := false
	defer func() {
		if !closed {
			sys.Close()
		}
	}()
	for _, path := range images {
		img, err := addImage(sys, path, c.Bool("read-only"), c.Bool("force-share"), cephOptions(c))
		if err != nil {
			return err
		}
		for _, w := range img.Warnings {
			fmt.Fprintf(os.Stderr, "vdisk: warning: %s: %s\n", path, w)
		}
		// The name a second writer's refusal gives for the lock holder.
		if st, ok := img.Disk.Extension.(*disk.Disk).Store.(*disk.RBDStore); ok && !st.ReadOnly() {
			fmt.Fprintf(os.Stderr, "vdisk: %s: holding its exclusive lock as %s\n", st.Spec(), st.Client())
		}
	}
	if c.Bool("trace") {
		tp := startTrace(sys.Ring(), os.Stderr)
		defer tp.stop()
	}
	for _, spec := range filterSpecs(c) {
		if _, err := sys.AddFilter(spec); err != nil {
			return err
		}
	}
	// Writers claim volumes per connection, so that the control API can
	// mount the volumes no NBD client is writing to.
	exports, _, err := sys.Exports(c.Bool("read-only"), export.ClaimPerConnection)
	if err != nil {
		return err
	}
	for _, e := range exports {
		if ed, ok := e.Device.(*export.Device); ok {
			ed.Refused = func(r *nbd.Request, err error) {
				fmt.Fprintf(os.Stderr, "vdisk: %s: %v\n", r.Requestor(), err)
			}
		}
	}
	// ErrorMessages: a refused write's reply says why (the volume is
	// mounted), not only EPERM. vdisk's errors name statuses and exports;
	// the clients are local (loopback or a unix socket) by default.
	cfg := nbd.Config{Exports: exports, TLSConfig: tlsConfig, TLSRequired: c.Bool("tls-required"), Errno: export.Errno, ErrorMessages: true}
	if c.Bool("verbose") {
		// The connection events (handshake failures and timeouts, unknown
		// export names, TLS errors, disconnects) are logged at Debug.
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := nbd.NewServer(cfg)
	if err != nil {
		return err
	}
	l, err := nbd.ListenAddr(c.String("listen"))
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", c.String("listen"), err)
	}
	var ctl *control.Server
	ctlErr := make(chan error, 1)
	sock := c.String("control")
	if sock != "" || c.String("http") != "" {
		// The web view's controls are the control API, socket or not.
		ctl = control.NewServer(sys, exports)
	}
	if sock != "" {
		cl, err := control.Listen(sock)
		if err != nil {
			l.Close()
			return fmt.Errorf("serve: %w", err)
		}
		defer cl.Close() // removes the socket, whatever happens
		go func() { ctlErr <- ctl.Serve(cl) }()
	}
	var view *web.Server
	var viewURL string
	webErr := make(chan error, 1)
	if addr := c.String("http"); addr != "" {
		hl, err := web.Listen(addr, c.Bool("http-allow-remote"))
		if err == nil {
			view, err = web.New(sys, ctl, exports)
			if err != nil {
				hl.Close()
			}
		}
		if err != nil {
			l.Close()
			return fmt.Errorf("serve: %w", err)
		}
		viewURL = view.URL(hl.Addr())
		go func() { webErr <- view.Serve(hl) }()
	}
	for _, e := range exports {
		name := e.Name
		if name == "" {
			name = `"" (default)`
		}
		ro := ""
		if e.ReadOnly {
			ro = ", read-only"
		}
		fmt.Fprintf(os.Stderr, "vdisk: export %s: %s (%d bytes%s)\n", name, e.Description, e.Device.Size(), ro)
	}
	fmt.Fprintf(os.Stderr, "vdisk: serving on %s; try: nbdinfo --list %s\n", l.Addr(), nbdURI(c.String("listen"), l.Addr().String()))
	if sock != "" {
		fmt.Fprintf(os.Stderr, "vdisk: control API on %s; try: vdisk stack --control %s\n", sock, sock)
	}
	if view != nil {
		fmt.Fprintf(os.Stderr, "vdisk: web view on %s\n", viewURL)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	var failed error
	select {
	case err := <-errc:
		failed = fmt.Errorf("serve: %w", err)
	case err := <-ctlErr:
		failed = fmt.Errorf("serve: control API: %w", err)
	case err := <-webErr:
		failed = fmt.Errorf("serve: web view: %w", err)
	case sig := <-sigs:
		fmt.Fprintf(os.Stderr, "vdisk: %v: draining requests, flushing and dismounting (again to stop at once)\n", sig)
	}
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "vdisk: second signal: stopping now")
		if sock != "" {
			os.Remove(sock)
		}
		os.Exit(1)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Stop taking control requests first, so nothing mounts while the
	// NBD side drains; then flush, dismount and close the images.
	errs := []error{failed}
	if view != nil {
		if err := view.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("serve: web view shutdown: %w", err))
		}
	}
	if ctl != nil {
		if err := ctl.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("serve: control API shutdown: %w", err))
		}
	}
	if err := srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("serve: shutdown: %w", err))
	}
	if ctl != nil {
		if err := ctl.DismountAll(); err != nil {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
	}
	closed = true
	if err := sys.Close(); err != nil {
		errs = append(errs, fmt.Errorf("serve: closing the images: %w", err))
	}
	return errors.Join(errs...)
}

// nbdURI is the URI a client would use for the listen address.
func nbdURI(listen, addr string) string {
	if len(listen) > 5 && listen[:5] == "unix:" {
		return "'nbd+unix:///?socket=" + listen[5:] + "'"
	}
	return "nbd://" + addr
}
