package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/nbd"
)

func TestParseNBDURI(t *testing.T) {
	for _, tc := range []struct {
		in, addr, export, err string
	}{
		{in: "nbd://10.0.2.2:10810/disk@1", addr: "10.0.2.2:10810", export: "disk@1"},
		{in: "nbd://localhost/disk", addr: "localhost:10809", export: "disk"},
		{in: "nbd://[::1]:99/", addr: "[::1]:99", export: ""},
		{in: "nbd://h/a%20b", addr: "h:10809", export: "a b"},
		{in: "nbds://h/x", err: "want an nbd://"},
		{in: "nbd:///x", err: "names no host"},
		{in: "nbd://h:0/x", err: "is not a TCP port"},
		{in: "nbd://h/x?socket=/s", err: "not supported"},
	} {
		got, err := parseNBDURI(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseNBDURI(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.Addr != tc.addr || got.Export != tc.export {
			t.Errorf("parseNBDURI(%q) = %+v, %v; want %s %q", tc.in, got, err, tc.addr, tc.export)
		}
	}
}

// startServer runs vdisk's NBD server (the peer attach negotiates with) on
// a loopback port.
func startServer(t *testing.T, exports ...nbd.Export) string {
	t.Helper()
	srv, err := nbd.NewServer(nbd.Config{Exports: exports})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := testsupport.Serve(t, srv.Serve, srv.Close, nbd.ErrServerClosed)
	return addr
}

// TestNegotiate checks the handshake against vdisk's server, then that the
// connection really is in transmission phase: a raw NBD_CMD_READ on it
// returns the bytes the device holds.
func TestNegotiate(t *testing.T) {
	dev := nbd.NewMemDevice(1 << 20)
	if err := dev.WriteAt(nil, []byte("partition one"), 4096); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t,
		nbd.Export{Name: "disk@1", Device: dev, MinBlock: 512},
		nbd.Export{Name: "ro", Device: nbd.NewMemDevice(64 << 10), ReadOnly: true},
	)

	conn, info, err := dialExport(nbdTarget{Addr: addr, Export: "disk@1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if info.Size != 1<<20 || info.ReadOnly() || info.MinBlock != 512 || info.MaxBlock == 0 {
		t.Errorf("disk@1: %+v; want size 1 MiB, writable, minimum block 512", info)
	}
	if err := checkBlockSize(512, info); err != nil {
		t.Errorf("checkBlockSize(512): %v", err)
	}
	var req [28]byte
	binary.BigEndian.PutUint32(req[0:], 0x25609513) // request magic
	binary.BigEndian.PutUint16(req[6:], 0)          // NBD_CMD_READ
	binary.BigEndian.PutUint64(req[8:], 7)          // cookie
	binary.BigEndian.PutUint64(req[16:], 4096)
	binary.BigEndian.PutUint32(req[24:], 512)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(req[:]); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 16+512)
	if _, err := io.ReadFull(conn, reply); err != nil {
		t.Fatal(err)
	}
	if magic, errno := binary.BigEndian.Uint32(reply), binary.BigEndian.Uint32(reply[4:]); magic != 0x67446698 || errno != 0 {
		t.Fatalf("read reply magic %#x errno %d", magic, errno)
	}
	if !bytes.HasPrefix(reply[16:], []byte("partition one")) {
		t.Errorf("read %q, want the device's bytes", reply[16:40])
	}

	_, info, err = dialExport(nbdTarget{Addr: addr, Export: "ro"})
	if err != nil {
		t.Fatal(err)
	}
	if !info.ReadOnly() || info.Size != 64<<10 {
		t.Errorf("ro: %+v; want read-only, 64 KiB", info)
	}

	if _, _, err := dialExport(nbdTarget{Addr: addr, Export: "disk@9"}); err == nil || !strings.Contains(err.Error(), `no export "disk@9"`) {
		t.Errorf("unknown export: %v", err)
	}
}

func TestCheckBlockSize(t *testing.T) {
	info := exportInfo{Size: 1 << 20, MinBlock: 1, MaxBlock: 32 << 20}
	for _, tc := range []struct {
		bs   uint32
		info exportInfo
		ok   bool
	}{
		{512, info, true},
		{4096, info, true},
		{1024, exportInfo{Size: 1 << 20}, true}, // no NBD_INFO_BLOCK_SIZE sent
		{256, info, false},
		{8192, info, false},
		{768, info, false},
		{512, exportInfo{Size: 1 << 20, MinBlock: 4096, MaxBlock: 1 << 20}, false},
		{4096, exportInfo{Size: 1<<20 + 512, MinBlock: 1, MaxBlock: 1 << 20}, false},
	} {
		if err := checkBlockSize(tc.bs, tc.info); (err == nil) != tc.ok {
			t.Errorf("checkBlockSize(%d, %+v) = %v, want ok=%v", tc.bs, tc.info, err, tc.ok)
		}
	}
}
