package testworld

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/nbd"
)

// System adds the images at paths to a new System with the given number
// of disk driver workers; an image whose table needed a workaround fails
// the test. The System is closed when the test ends.
func System(t testing.TB, workers int, readOnly bool, paths ...string) (*vdisk.System, []*vdisk.Image) {
	t.Helper()
	sys := vdisk.New(vdisk.Options{Workers: workers, Requestor: "e2e"})
	t.Cleanup(func() {
		if err := sys.Close(); err != nil {
			t.Errorf("System.Close: %v", err)
		}
	})
	var imgs []*vdisk.Image
	for _, p := range paths {
		img, err := sys.AddImage(p, readOnly)
		if err != nil {
			t.Fatal(err)
		}
		if len(img.Warnings) > 0 {
			t.Fatalf("%s: warnings %q", p, img.Warnings)
		}
		imgs = append(imgs, img)
	}
	return sys, imgs
}

// Serve serves exports on 127.0.0.1 (with export.Errno) and returns the
// nbd:// URI prefix; when the test ends the server is shut down (drained
// and flushed) and release, if any, is called.
func Serve(t testing.TB, exports []nbd.Export, release func()) string {
	t.Helper()
	uri, _ := ServeNBD(t, exports, release)
	return uri
}

// ServeNBD is Serve, and returns also a function that shuts the server down
// (drained and flushed) at once, to test what follows: the images after
// the server has gone.
func ServeNBD(t testing.TB, exports []nbd.Export, release func()) (uri string, stop func()) {
	t.Helper()
	srv, err := nbd.NewServer(nbd.Config{Exports: exports, Errno: export.Errno})
	if err != nil {
		t.Fatal(err)
	}
	if release != nil {
		t.Cleanup(release) // after the server's cleanup below, which runs first
	}
	shutdown := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	}
	addr, stop := testsupport.Serve(t, srv.Serve, shutdown, nbd.ErrServerClosed)
	return "nbd://" + addr, stop
}

// ServeControl answers the control API for sys and its exports on a new
// unix socket, and returns the server, its socket and a function that
// stops it: the
// server shuts down (ending monitor streams and giving back its locks),
// Serve returns, every volume is dismounted, and the socket must be gone.
// The function does that once; it also runs when the test ends.
func ServeControl(t testing.TB, sys *vdisk.System, exports []nbd.Export) (ctl *control.Server, sock string, stop func()) {
	t.Helper()
	sock = testsupport.SocketPath(t)
	ctl = control.NewServer(sys, exports)
	l, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ctl.Serve(l) }()
	stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := ctl.Shutdown(ctx); err != nil {
			t.Errorf("control shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("control Serve: %v", err)
		}
		if err := ctl.DismountAll(); err != nil {
			t.Errorf("DismountAll: %v", err)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("control socket left behind after shutdown: %v", err)
		}
	})
	t.Cleanup(stop)
	return ctl, sock, stop
}

// ServeSystem serves sys's exports, claiming writable exports' volumes at
// once (export.ClaimAtOnce) for as long as the test runs.
func ServeSystem(t testing.TB, sys *vdisk.System, readOnly bool) string {
	t.Helper()
	exports, release, err := sys.Exports(readOnly, export.ClaimAtOnce)
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, exports, release)
}

// FilterSystem opens the image at path in a new System with the given
// filters loaded (System.AddFilter); it is closed when the test ends.
func FilterSystem(t testing.TB, opts vdisk.Options, path string, specs ...string) *vdisk.System {
	t.Helper()
	sys := vdisk.New(opts)
	t.Cleanup(func() {
		if err := sys.Close(); err != nil {
			t.Errorf("System.Close: %v", err)
		}
	})
	if _, err := sys.AddImage(path, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if _, err := sys.AddFilter(s); err != nil {
			t.Fatal(err)
		}
	}
	return sys
}

// FATSystem opens a FAT16 partition image with filters loaded and returns
// the system and its volume.
func FATSystem(t testing.TB, opts vdisk.Options, specs ...string) (*vdisk.System, *vdisk.Volume, string) {
	t.Helper()
	dir := t.TempDir()
	path := FATImage(t, dir, "16", 64<<20)
	sys := FilterSystem(t, opts, path, specs...)
	v, err := sys.VolumeNamed("fat16@1")
	if err != nil {
		t.Fatal(err)
	}
	v.Requestor = "test"
	return sys, v, path
}

// Exports returns sys's NBD exports, claimed as claim says; what
// export.ClaimAtOnce claimed is given back when the test ends.
func Exports(t testing.TB, sys *vdisk.System, readOnly bool, claim export.Claim) []nbd.Export {
	t.Helper()
	exports, release, err := sys.Exports(readOnly, claim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return exports
}

// VolumeNamed is sys.VolumeNamed(name) with the volume's requests made as
// requestor.
func VolumeNamed(sys *vdisk.System, name, requestor string) (*vdisk.Volume, error) {
	v, err := sys.VolumeNamed(name)
	if err != nil {
		return nil, err
	}
	v.Requestor = requestor
	return v, nil
}
