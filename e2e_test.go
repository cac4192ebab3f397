package vdisk_test

// End-to-end tests: images made by vdisk.CreateImage (or by fdisk), served
// by the real stack (System → Exports → nbd.Server on 127.0.0.1:0), checked
// with outside tools: nbdinfo, nbdcopy and nbdsh (libnbd), qemu-img, fio's
// nbd engine, sfdisk/fdisk, stat(2) and the image file itself. Each test
// skips, naming the tool, when a tool it needs is not installed (Debian:
// libnbd-bin, python3-libnbd, qemu-utils, fio, fdisk).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/nbd"
	"github.com/vdisk-dev/vdisk/partition"
	"github.com/vdisk-dev/vdisk/volume"
)

const (
	e2eMiB        = 1 << 20
	e2eCmdTimeout = 60 * time.Second // bound on every tool run
)

// ---- tools ----

func e2eNeedTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// e2eNeedNbdsh returns the interpreter that runs nbdsh. Debian's
// /usr/bin/nbdsh is a shell script running `python3 -m nbd`, which finds
// whatever python3 comes first in PATH; libnbd's module (python3-libnbd)
// belongs to /usr/bin/python3, so the tests run `/usr/bin/python3 -m nbd`.
func e2eNeedNbdsh(t *testing.T) string {
	t.Helper()
	e2eNeedTool(t, "nbdsh")
	py := e2eNeedTool(t, "/usr/bin/python3")
	if out, err := exec.Command(py, "-c", "import nbd").CombinedOutput(); err != nil {
		t.Skipf("nbdsh cannot run: /usr/bin/python3 cannot import nbd (python3-libnbd not installed): %s", out)
	}
	return py
}

type e2eResult struct {
	stdout, stderr string
	code           int
}

// e2eRun runs a tool with a time limit and returns its output and exit status.
func e2eRun(t *testing.T, stdin, name string, args ...string) e2eResult {
	t.Helper()
	return e2eRunIn(t, "", stdin, name, args...)
}

// e2eRunIn is e2eRun in directory dir ("" for the current one).
func e2eRunIn(t *testing.T, dir, stdin, name string, args ...string) e2eResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q: no answer within %v\n%s%s", name, args, e2eCmdTimeout, out.String(), errb.String())
	}
	r := e2eResult{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %q: %v", name, args, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// e2eMust runs a tool that must succeed and returns its standard output.
func e2eMust(t *testing.T, name string, args ...string) string {
	t.Helper()
	r := e2eRun(t, "", name, args...)
	if r.code != 0 {
		t.Fatalf("%s %q: exit status %d\n%s%s", name, args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// e2eNbdshPrelude is prepended to every nbdsh snippet: tryop calls an
// operation and returns "ok" or the name of the errno the server sent.
const e2eNbdshPrelude = `
import errno, json, sys
import nbd
def tryop(f, *a):
    try:
        f(*a)
        return "ok"
    except nbd.Error as ex:
        n = ex.errno
        return errno.errorcode.get(n, str(n)) if isinstance(n, int) else str(n)
`

// e2eNbdsh runs a Python snippet in nbdsh connected to uri (the handle is
// h); the snippet prints one JSON object, which is returned.
func e2eNbdsh(t *testing.T, py, uri, script string) map[string]any {
	t.Helper()
	r := e2eRun(t, "", py, "-m", "nbd", "-u", uri, "-c", e2eNbdshPrelude+script)
	if r.code != 0 {
		t.Fatalf("nbdsh on %s: exit status %d\n%s%s", uri, r.code, r.stdout, r.stderr)
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("nbdsh on %s: %v\n%s%s", uri, err, r.stdout, r.stderr)
	}
	return m
}

// e2eExpect compares nbdsh results with what is wanted.
func e2eExpect(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s: %s = %v, want %v (all results: %v)", what, k, got[k], w, got)
		}
	}
}

type e2eExport struct {
	Name         string `json:"export-name"`
	ReadOnly     bool   `json:"is_read_only"`
	CanCache     bool   `json:"can_cache"`
	CanFlush     bool   `json:"can_flush"`
	CanFUA       bool   `json:"can_fua"`
	CanMultiConn bool   `json:"can_multi_conn"`
	CanTrim      bool   `json:"can_trim"`
	CanZero      bool   `json:"can_zero"`
	MinBlock     uint32 `json:"block_size_minimum"`
	Size         int64  `json:"export-size"`
}

func e2eNbdinfo(t *testing.T, args ...string) []e2eExport {
	t.Helper()
	out := e2eMust(t, "nbdinfo", append([]string{"--json", "--no-content"}, args...)...)
	var j struct {
		Exports []e2eExport `json:"exports"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("nbdinfo %q: %v\n%s", args, err, out)
	}
	return j.Exports
}

// e2eExtent is one run of a map; Type is nbdinfo's: 0 data, 3 hole+zero.
type e2eExtent struct {
	Offset, Length int64
	Type           int
}

func e2eMerge(in []e2eExtent) []e2eExtent {
	var out []e2eExtent
	for _, e := range in {
		if n := len(out); n > 0 && out[n-1].Type == e.Type && out[n-1].Offset+out[n-1].Length == e.Offset {
			out[n-1].Length += e.Length
			continue
		}
		out = append(out, e)
	}
	return out
}

// e2eNbdinfoMap is `nbdinfo --map --json` of an export (base:allocation).
func e2eNbdinfoMap(t *testing.T, uri string) []e2eExtent {
	t.Helper()
	out := e2eMust(t, "nbdinfo", "--map", "--json", uri)
	var raw []struct {
		Offset int64 `json:"offset"`
		Length int64 `json:"length"`
		Type   int   `json:"type"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("nbdinfo --map %s: %v\n%s", uri, err, out)
	}
	var ext []e2eExtent
	for _, r := range raw {
		ext = append(ext, e2eExtent{r.Offset, r.Length, r.Type})
	}
	return e2eMerge(ext)
}

// e2eQemuMap is `qemu-img map` of a raw file (SEEK_DATA/SEEK_HOLE as qemu
// sees them), in nbdinfo's terms.
func e2eQemuMap(t *testing.T, path string) []e2eExtent {
	t.Helper()
	out := e2eMust(t, "qemu-img", "map", "--output=json", "-f", "raw", path)
	var raw []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
		Zero   bool  `json:"zero"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("qemu-img map %s: %v\n%s", path, err, out)
	}
	var ext []e2eExtent
	for _, r := range raw {
		typ := 0
		if !r.Data {
			typ |= 1
		}
		if r.Zero {
			typ |= 2
		}
		ext = append(ext, e2eExtent{r.Start, r.Length, typ})
	}
	return e2eMerge(ext)
}

// e2eTypeAt returns the map type covering [off, off+n), or -1 when the range
// spans extents of different types.
func e2eTypeAt(m []e2eExtent, off, n int64) int {
	for _, e := range m {
		if off >= e.Offset && off+n <= e.Offset+e.Length {
			return e.Type
		}
	}
	return -1
}

// ---- images ----

// e2ePart is a partition as an outside tool sees it, in bytes.
type e2ePart struct{ Start, Size int64 }

func (p e2ePart) End() int64 { return p.Start + p.Size }

// e2eSfdisk returns the partitions of an image as `sfdisk -J` lists them,
// leaving out MBR extended containers (which are not volumes).
func e2eSfdisk(t *testing.T, path string) []e2ePart {
	t.Helper()
	out := e2eMust(t, "sfdisk", "-J", path)
	var j struct {
		Table struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
				Type  string `json:"type"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("sfdisk -J %s: %v\n%s", path, err, out)
	}
	ss := j.Table.SectorSize
	if ss == 0 {
		ss = 512
	}
	var parts []e2ePart
	for _, p := range j.Table.Partitions {
		switch strings.ToLower(p.Type) {
		case "5", "f", "85":
			continue
		}
		parts = append(parts, e2ePart{p.Start * ss, p.Size * ss})
	}
	return parts
}

// e2eFdisk4096 returns the partitions of an image read with 4096-byte
// sectors by fdisk (sfdisk 2.38 cannot override an image's sector size).
func e2eFdisk4096(t *testing.T, path string) []e2ePart {
	t.Helper()
	out := e2eMust(t, "fdisk", "-b", "4096", "-l", "-o", "Device,Start,Sectors", path)
	var parts []e2ePart
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[0], path) {
			continue
		}
		start, err1 := strconv.ParseInt(f[1], 10, 64)
		n, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("fdisk line %q", line)
		}
		parts = append(parts, e2ePart{start * 4096, n * 4096})
	}
	if len(parts) == 0 {
		t.Fatalf("fdisk -b 4096 -l %s lists no partitions:\n%s", path, out)
	}
	return parts
}

// e2eGPT creates gpt.img: 64 MiB, an ESP of 16 MiB, a Linux partition of
// 16 MiB and a raw partition with the rest.
func e2eGPT(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "gpt.img")
	_, err := vdisk.CreateImage(path, vdisk.CreateOptions{Size: 64 * e2eMiB, Table: partition.GPT, NoFormat: true, Parts: []partition.Spec{
		{Size: 16 * e2eMiB, Type: "esp", Label: "EFI"}, {Size: 16 * e2eMiB, Type: "linux", Label: "data"}, {Size: partition.Rest, Type: "raw", Label: "rest"}}})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// e2eMBR creates mbr.img: 48 MiB, three primaries of 6 MiB and, in an
// extended partition, two logicals (6 MiB and the rest).
func e2eMBR(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "mbr.img")
	_, err := vdisk.CreateImage(path, vdisk.CreateOptions{Size: 48 * e2eMiB, Table: partition.MBR, NoFormat: true, Parts: []partition.Spec{
		{Size: 6 * e2eMiB, Type: "linux"}, {Size: 6 * e2eMiB, Type: "raw"}, {Size: 6 * e2eMiB, Type: "fat32"},
		{Size: 6 * e2eMiB, Type: "linux"}, {Size: partition.Rest, Type: "linux"}}})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// e2eRandom returns n deterministic random bytes; with holes, every third
// 64 KiB block is zero (so copies exercise zeroing too).
func e2eRandom(n int, seed byte, holes bool) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	if holes {
		for off := 0; off < n; off += 3 * 64 << 10 {
			clear(b[off:min(n, off+64<<10)])
		}
	}
	return b
}

func e2eWriteAt(t *testing.T, path string, p []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func e2eReadAt(t *testing.T, path string, off int64, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// e2eHashOutside hashes an image file except [p.Start, p.End()).
func e2eHashOutside(t *testing.T, path string, p e2ePart) [2][32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return [2][32]byte{sha256.Sum256(b[:p.Start]), sha256.Sum256(b[p.End():])}
}

func e2eHashFile(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// e2eBlocks is stat(2)'s st_blocks (512-byte units), what `stat -c %b` prints.
func e2eBlocks(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks
}

// ---- the system and its server ----

func e2eSystem(t *testing.T, workers int, readOnly bool, paths ...string) (*vdisk.System, []*vdisk.Image) {
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

// e2eServe serves exports on 127.0.0.1 and returns the nbd:// URI prefix;
// the server is shut down (drained and flushed) when the test ends.
func e2eServe(t *testing.T, exports []nbd.Export, release func()) string {
	t.Helper()
	srv, err := nbd.NewServer(nbd.Config{Exports: exports, Errno: vdisk.Errno})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, nbd.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		if release != nil {
			release()
		}
	})
	return "nbd://" + l.Addr().String()
}

// e2eServeSystem serves sys.Exports(readOnly).
func e2eServeSystem(t *testing.T, sys *vdisk.System, readOnly bool) string {
	t.Helper()
	exports, release, err := sys.Exports(readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return e2eServe(t, exports, release)
}

// e2eFilter is a pass-through disk filter that records the requestor of
// every write it sees.
type e2eFilter struct {
	lower      *iomgr.Device
	mu         sync.Mutex
	requestors map[string]int
}

func e2eAttachFilter(t *testing.T, m *iomgr.Manager, target *iomgr.Device) *e2eFilter {
	t.Helper()
	drv := m.CreateDriver(`\Driver\E2EFilter`)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		f := dev.Extension.(*e2eFilter)
		if irp.CurrentStackLocation().Major == iomgr.MajorWrite {
			f.mu.Lock()
			f.requestors[irp.Requestor]++
			f.mu.Unlock()
		}
		irp.SkipCurrentStackLocation()
		return iomgr.CallDriver(f.lower, irp)
	})
	drv.FastIO = &iomgr.FastIODispatch{DetachDevice: func(source, target *iomgr.Device) {
		if err := m.DetachDevice(target); err != nil {
			panic(err)
		}
		m.DeleteDevice(source)
	}}
	dev, err := m.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &e2eFilter{requestors: map[string]int{}}
	dev.Extension = f
	if f.lower, err = m.AttachDeviceToDeviceStack(dev, target); err != nil {
		t.Fatal(err)
	}
	dev.ClearFlags(iomgr.DeviceInitializing)
	return f
}

// ---- 1. nbdinfo: exports, flags, maps ----

// TestE2ENbdinfoExports: `nbdinfo --list --json` shows every export of a GPT
// image and an MBR image with logical partitions (names, sizes from sfdisk,
// 512-byte minimum block), and `nbdinfo --json` of each export reports the
// capabilities, with is_read_only matching the read-only option.
func TestE2ENbdinfoExports(t *testing.T) {
	t.Parallel()
	e2eNeedTool(t, "nbdinfo")
	e2eNeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt, mbr := e2eGPT(t, dir), e2eMBR(t, dir)
	type want struct {
		name string
		size int64
	}
	var wants []want
	for i, path := range []string{gpt, mbr} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(path), ".img")
		wants = append(wants, want{name, fi.Size()})
		if i == 0 {
			wants = append(wants, want{"", fi.Size()})
		}
		for j, p := range e2eSfdisk(t, path) {
			wants = append(wants, want{fmt.Sprintf("%s@%d", name, j+1), p.Size})
		}
	}
	if len(wants) != 2+1+3+5 {
		t.Fatalf("sfdisk sees %d exports' worth of partitions: %v", len(wants), wants)
	}

	sys, _ := e2eSystem(t, 0, false, gpt, mbr)
	rw := e2eServeSystem(t, sys, false)
	ro := e2eServeSystem(t, sys, true)
	for _, srv := range []struct {
		uri string
		ro  bool
	}{{rw, false}, {ro, true}} {
		list := e2eNbdinfo(t, "--list", srv.uri)
		var got, exp []string
		for _, e := range list {
			got = append(got, fmt.Sprintf("%q size=%d min=%d ro=%v flush=%v multi-conn=%v cache=%v fua=%v trim=%v zero=%v",
				e.Name, e.Size, e.MinBlock, e.ReadOnly, e.CanFlush, e.CanMultiConn, e.CanCache, e.CanFUA, e.CanTrim, e.CanZero))
		}
		for _, w := range wants {
			rw := !srv.ro
			exp = append(exp, fmt.Sprintf("%q size=%d min=512 ro=%v flush=true multi-conn=true cache=true fua=%v trim=%v zero=%v",
				w.name, w.size, srv.ro, rw, rw, rw))
		}
		if strings.Join(got, "\n") != strings.Join(exp, "\n") {
			t.Errorf("nbdinfo --list %s:\n%s\nwant\n%s", srv.uri, strings.Join(got, "\n"), strings.Join(exp, "\n"))
		}
		for i, w := range wants {
			if srv.ro && i%3 != 0 {
				continue // each nbdinfo costs libnbd's 200 ms cork; --list checked them all
			}
			uri := srv.uri + "/" + w.name
			one := e2eNbdinfo(t, uri)
			if len(one) != 1 {
				t.Fatalf("nbdinfo %s: %d exports", uri, len(one))
			}
			e := one[0]
			writable := !srv.ro
			if e.Name != w.name || e.Size != w.size || e.ReadOnly != srv.ro || !e.CanFlush || !e.CanMultiConn || !e.CanCache ||
				e.CanFUA != writable || e.CanTrim != writable || e.CanZero != writable {
				t.Errorf("nbdinfo %s: %+v (read-only option %v)", uri, e, srv.ro)
			}
		}
	}
}

// TestE2ENbdinfoMap: data written into a sparse image with os.File.WriteAt
// shows up in `nbdinfo --map` exactly where it is: for a partition export
// at partition-relative offsets, for the whole disk as qemu-img map sees the
// file.
func TestE2ENbdinfoMap(t *testing.T) {
	t.Parallel()
	e2eNeedTool(t, "nbdinfo")
	e2eNeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := e2eGPT(t, dir)
	parts := e2eSfdisk(t, gpt)
	p2, p3 := parts[1], parts[2]
	const k = 1 << 10
	writes := []struct{ off, n int64 }{{64 * k, 128 * k}, {e2eMiB, 4 * k}, {p2.Size - 8*k, 8 * k}}
	for i, w := range writes {
		e2eWriteAt(t, gpt, e2eRandom(int(w.n), byte(i+1), false), p2.Start+w.off)
	}
	e2eWriteAt(t, gpt, e2eRandom(64*k, 9, false), p3.Start+512*k)

	sys, _ := e2eSystem(t, 0, false, gpt)
	uri := e2eServeSystem(t, sys, true)

	got := e2eNbdinfoMap(t, uri+"/gpt@2")
	want := []e2eExtent{{0, 64 * k, 3}, {64 * k, 128 * k, 0}, {192 * k, e2eMiB - 192*k, 3}, {e2eMiB, 4 * k, 0},
		{e2eMiB + 4*k, p2.Size - 8*k - e2eMiB - 4*k, 3}, {p2.Size - 8*k, 8 * k, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("nbdinfo --map of partition 2:\n got %v\nwant %v", got, want)
	}
	got = e2eNbdinfoMap(t, uri+"/gpt@3")
	want = []e2eExtent{{0, 512 * k, 3}, {512 * k, 64 * k, 0}, {576 * k, p3.Size - 576*k, 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("nbdinfo --map of partition 3:\n got %v\nwant %v", got, want)
	}

	whole := e2eNbdinfoMap(t, uri+"/gpt")
	for _, w := range writes {
		if typ := e2eTypeAt(whole, p2.Start+w.off, w.n); typ != 0 {
			t.Errorf("whole disk map: data written at %d+%d has type %d", p2.Start+w.off, w.n, typ)
		}
	}
	if typ := e2eTypeAt(whole, p2.Start+192*k, e2eMiB-192*k); typ != 3 {
		t.Errorf("whole disk map: a hole in partition 2 has type %d", typ)
	}
	t.Run("against qemu-img map", func(t *testing.T) {
		e2eNeedTool(t, "qemu-img")
		if q := e2eQemuMap(t, gpt); fmt.Sprint(q) != fmt.Sprint(whole) {
			t.Errorf("nbdinfo --map of the whole disk:\n %v\nqemu-img map of the file:\n %v", whole, q)
		}
	})
}

// ---- 2. nbdcopy round trip into a partition ----

// TestE2ENbdcopyPartitionRoundTrip copies random data (with zero runs) into
// a partition export with nbdcopy and back: the copy is byte-identical, the
// data is in the image at the partition's offset (from sfdisk), and every
// byte outside the partition is unchanged.
func TestE2ENbdcopyPartitionRoundTrip(t *testing.T) {
	t.Parallel()
	e2eNeedTool(t, "nbdcopy")
	e2eNeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := e2eGPT(t, dir)
	parts := e2eSfdisk(t, gpt)
	p := parts[1]
	// Neighbours full of data, the target full of stale bytes the copy must replace (zeros included).
	e2eWriteAt(t, gpt, e2eRandom(int(parts[0].Size), 0x11, false), parts[0].Start)
	e2eWriteAt(t, gpt, e2eRandom(int(parts[2].Size), 0x33, false), parts[2].Start)
	e2eWriteAt(t, gpt, bytes.Repeat([]byte{0xaa}, int(p.Size)), p.Start)
	outside := e2eHashOutside(t, gpt, p)

	sys, _ := e2eSystem(t, 4, false, gpt)
	uri := e2eServeSystem(t, sys, false) + "/gpt@2"
	for i, args := range [][]string{
		{"--flush"},
		{"--flush", "--connections=4", "--requests=16", "--request-size=65536"},
	} {
		src := filepath.Join(dir, fmt.Sprintf("src%d.bin", i))
		data := e2eRandom(int(p.Size), byte(i+1), true)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		e2eMust(t, "nbdcopy", append(args, src, uri)...)
		back := filepath.Join(dir, fmt.Sprintf("back%d.bin", i))
		e2eMust(t, "nbdcopy", uri, back)
		got, err := os.ReadFile(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round %d (%v): nbdcopy out differs from what nbdcopy put in", i, args)
		}
		if !bytes.Equal(e2eReadAt(t, gpt, p.Start, p.Size), data) {
			t.Fatalf("round %d: the image at the partition's offset %d does not hold the data", i, p.Start)
		}
		if e2eHashOutside(t, gpt, p) != outside {
			t.Fatalf("round %d: bytes outside partition 2 [%d, %d) changed", i, p.Start, p.End())
		}
	}
}

// ---- 3. qemu-img compare ----

// TestE2EQemuImgCompare: qemu-img compare finds an export identical to a
// reference file (exit 0) and notices one changed byte (exit 1).
func TestE2EQemuImgCompare(t *testing.T) {
	t.Parallel()
	e2eNeedTool(t, "qemu-img")
	e2eNeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := e2eGPT(t, dir)
	p := e2eSfdisk(t, gpt)[0]
	data := e2eRandom(int(p.Size), 5, true)
	e2eWriteAt(t, gpt, data, p.Start)
	ref := filepath.Join(dir, "ref.bin")
	if err := os.WriteFile(ref, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sys, _ := e2eSystem(t, 0, false, gpt)
	uri := e2eServeSystem(t, sys, true)

	for _, c := range []struct{ file, uri string }{{ref, uri + "/gpt@1"}, {gpt, uri + "/gpt"}, {gpt, uri + "/"}} {
		if r := e2eRun(t, "", "qemu-img", "compare", "-f", "raw", "-F", "raw", c.file, c.uri); r.code != 0 {
			t.Errorf("qemu-img compare %s %s: exit status %d, want 0\n%s%s", c.file, c.uri, r.code, r.stdout, r.stderr)
		}
	}
	const at = 5*e2eMiB + 123
	e2eWriteAt(t, ref, []byte{data[at] ^ 0x01}, at)
	r := e2eRun(t, "", "qemu-img", "compare", "-f", "raw", "-F", "raw", ref, uri+"/gpt@1")
	if r.code != 1 || !strings.Contains(r.stdout, "mismatch") {
		t.Errorf("qemu-img compare after changing byte %d: exit status %d, want 1\n%s%s", at, r.code, r.stdout, r.stderr)
	}
}

// ---- 4. fio, several connections, verified ----

type e2eFioJob struct {
	Name     string `json:"jobname"`
	Error    int    `json:"error"`
	TotalErr *int   `json:"total_err"`
	Read     struct {
		Bytes int64 `json:"io_bytes"`
	} `json:"read"`
	Write struct {
		Bytes int64 `json:"io_bytes"`
	} `json:"write"`
}

// e2eFio runs fio and returns its exit status and the jobs of its JSON
// output file (fio's nbd engine prints a line of its own on stdout).
func e2eFio(t *testing.T, args ...string) (int, []e2eFioJob, string) {
	t.Helper()
	// fio runs in a directory of its own: it may leave files there (verify state).
	dir := t.TempDir()
	out := filepath.Join(dir, "fio.json")
	r := e2eRunIn(t, dir, "", "fio", append(args, "--output-format=json", "--output="+out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("fio wrote no output (exit status %d): %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	var j struct {
		Jobs []e2eFioJob `json:"jobs"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("fio output: %v\n%s", err, b)
	}
	return r.code, j.Jobs, r.stdout + r.stderr
}

// TestE2EFioVerifyMultiConn: fio's nbd engine, four jobs each with its own
// connection and its own 4 MiB region of a logical MBR partition, writes
// random 4 KiB blocks with crc32c checksums and reads them back: no verify
// error. Then one byte of the image is changed and a verify-only pass must
// notice it, so the check is not vacuous.
func TestE2EFioVerifyMultiConn(t *testing.T) {
	t.Parallel()
	e2eNeedTool(t, "fio")
	e2eNeedTool(t, "sfdisk")
	// 4 KiB requests run inline in the server's reader; 1 MiB reads are
	// MDL reads, sent from the image's page cache.
	for _, bs := range []string{"4k", "1m"} {
		t.Run("bs="+bs, func(t *testing.T) {
			t.Parallel()
			e2eFioVerifyMultiConn(t, bs)
		})
	}
}

func e2eFioVerifyMultiConn(t *testing.T, bs string) {
	dir := t.TempDir()
	mbr := e2eMBR(t, dir)
	parts := e2eSfdisk(t, mbr)
	p := parts[len(parts)-1] // the second logical partition, mbr@5
	outside := e2eHashOutside(t, mbr, p)

	sys, imgs := e2eSystem(t, 4, false, mbr)
	filter := e2eAttachFilter(t, sys.Manager, imgs[0].Disk)
	uri := e2eServeSystem(t, sys, false) + "/mbr@5"
	const jobs, region = 4, 4 * e2eMiB
	args := []string{"--name=e2e", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite", "--bs=" + bs, "--iodepth=8",
		"--numjobs=" + strconv.Itoa(jobs), "--size=" + strconv.Itoa(region), "--offset_increment=" + strconv.Itoa(region),
		"--verify=crc32c", "--do_verify=1", "--continue_on_error=verify", "--verify_state_save=0", "--runtime=30"}
	code, got, out := e2eFio(t, args...)
	if code != 0 || len(got) != jobs {
		t.Fatalf("fio: exit status %d, %d jobs\n%s", code, len(got), out)
	}
	for i, j := range got {
		if j.Error != 0 || j.TotalErr == nil || *j.TotalErr != 0 || j.Write.Bytes != region || j.Read.Bytes != region {
			t.Errorf("fio job %d: error %d, total_err %v, wrote %d, verified %d (want %d each)", i, j.Error, j.TotalErr, j.Write.Bytes, j.Read.Bytes, region)
		}
	}
	filter.mu.Lock()
	conns := len(filter.requestors)
	filter.mu.Unlock()
	if conns < jobs {
		t.Errorf("the disk saw writes from %d clients, want %d (one connection per job): %v", conns, jobs, filter.requestors)
	}
	if e2eHashOutside(t, mbr, p) != outside {
		t.Fatal("fio's writes reached the image outside partition 5")
	}

	// Break one byte of job 0's region behind the server's back.
	b := e2eReadAt(t, mbr, p.Start+100, 1)
	e2eWriteAt(t, mbr, []byte{b[0] ^ 0xff}, p.Start+100)
	code, got, out = e2eFio(t, append(args, "--verify_only")...)
	failed := false
	for _, j := range got {
		failed = failed || j.Error != 0 || j.TotalErr != nil && *j.TotalErr > 0
	}
	if !failed {
		t.Fatalf("fio --verify_only missed a changed byte (exit status %d)\n%s", code, out)
	}
}

// ---- 5. read-only ----

// TestE2EReadOnly: with the read-only option nbdinfo reports read-only
// exports, nbdcopy and nbdsh writes fail with EPERM, and the image does not
// change. An export that NBD leaves writable over a read-only disk gets
// EPERM from the disk driver (STATUS_MEDIA_WRITE_PROTECTED through Errno).
func TestE2EReadOnly(t *testing.T) {
	t.Parallel()
	e2eNeedTool(t, "nbdinfo")
	dir := t.TempDir()
	gpt := e2eGPT(t, dir)
	e2eWriteAt(t, gpt, e2eRandom(4*e2eMiB, 3, true), 20*e2eMiB)
	sum := e2eHashFile(t, gpt)

	sys, imgs := e2eSystem(t, 0, true, gpt)
	img := imgs[0]
	if !img.ReadOnly {
		t.Fatal("image added read-only is not ReadOnly")
	}
	// Asking for writable exports of a read-only image gives read-only ones and claims nothing.
	exports, release, err := sys.Exports(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exports {
		if !e.ReadOnly {
			t.Errorf("export %q of a read-only image is writable", e.Name)
		}
	}
	for _, v := range img.Volumes {
		ext := v.Extension.(*volume.Extension)
		if err := ext.AcquireMount(); err != nil {
			t.Errorf("read-only exports claimed %v: %v", v, err)
		} else {
			ext.ReleaseMount()
		}
	}
	uri := e2eServe(t, exports, release)

	for _, e := range e2eNbdinfo(t, "--list", uri) {
		if !e.ReadOnly || e.CanTrim || e.CanZero || e.CanFUA {
			t.Errorf("nbdinfo: export %q: %+v", e.Name, e)
		}
	}
	if e := e2eNbdinfo(t, uri+"/gpt@2"); len(e) != 1 || !e[0].ReadOnly {
		t.Errorf("nbdinfo gpt@2: %+v", e)
	}

	// NBD-writable exports over the read-only disk and one of its volumes:
	// writes reach the stack and the refusal comes from the disk driver
	// (STATUS_MEDIA_WRITE_PROTECTED, which Errno maps to EPERM).
	devURI := e2eServe(t, []nbd.Export{
		{Name: "disk", Device: &vdisk.ExportDevice{Device: img.Disk, Length: img.Disk.Extension.(*disk.Disk).Size}, MinBlock: 512},
		{Name: "vol", Device: &vdisk.ExportDevice{Device: img.Volumes[1], Length: img.Volumes[1].Extension.(*volume.Extension).Size}, MinBlock: 512},
	}, nil)

	t.Run("nbdcopy", func(t *testing.T) {
		e2eNeedTool(t, "nbdcopy")
		src := filepath.Join(t.TempDir(), "src.bin")
		if err := os.WriteFile(src, e2eRandom(16*e2eMiB, 4, false), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e2eRun(t, "", "nbdcopy", src, uri+"/gpt@2"); r.code == 0 || !strings.Contains(r.stderr, "read-only") {
			t.Errorf("nbdcopy into a read-only export: exit status %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := e2eRun(t, "", "nbdcopy", src, devURI+"/vol"); r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), syscall.EPERM.Error()) {
			t.Errorf("nbdcopy into an NBD-writable export of a read-only volume: exit status %d, want EPERM\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("nbdsh", func(t *testing.T) {
		py := e2eNeedNbdsh(t)
		script := `
h.set_strict_mode(0)
r = {"ro": h.is_read_only(),
     "write": tryop(h.pwrite, b"x" * 4096, 0),
     "fua": tryop(h.pwrite, b"x" * 4096, 4096, nbd.CMD_FLAG_FUA),
     "trim": tryop(h.trim, 65536, 0),
     "zero": tryop(h.zero, 65536, 0),
     "flush": tryop(h.flush),
     "read": tryop(h.pread, 4096, 0)}
print(json.dumps(r))
`
		for _, name := range []string{"gpt", "gpt@1", "gpt@3"} {
			e2eExpect(t, name, e2eNbdsh(t, py, uri+"/"+name, script), map[string]any{
				"ro": true, "write": "EPERM", "fua": "EPERM", "trim": "EPERM", "zero": "EPERM", "flush": "ok", "read": "ok"})
		}

		for _, name := range []string{"disk", "vol"} {
			e2eExpect(t, "NBD-writable "+name, e2eNbdsh(t, py, devURI+"/"+name, script), map[string]any{
				"ro": false, "write": "EPERM", "fua": "EPERM", "trim": "EPERM", "zero": "EPERM", "flush": "ok", "read": "ok"})
		}
	})

	if e2eHashFile(t, gpt) != sum {
		t.Fatal("the read-only image changed")
	}
}

// ---- 6. TRIM, WRITE_ZEROES, FLUSH ----

// TestE2ETrimZeroFlush sends TRIM and WRITE_ZEROES (with and without
// NO_HOLE) and FLUSH to a partition export with nbdsh: the ranges read as
// zeros, stat(2) and qemu-img map show the space freed (kept for NO_HOLE),
// and requests crossing the partition's end fail with EINVAL without
// touching the partition's tail or the next partition.
func TestE2ETrimZeroFlush(t *testing.T) {
	t.Parallel()
	py := e2eNeedNbdsh(t)
	e2eNeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := e2eGPT(t, dir)
	parts := e2eSfdisk(t, gpt)
	p2, p3 := parts[1], parts[2]
	e2eWriteAt(t, gpt, e2eRandom(6*e2eMiB, 1, false), p2.Start+e2eMiB)
	tail := e2eRandom(64<<10, 2, false)
	e2eWriteAt(t, gpt, tail, p2.End()-64<<10)
	head3 := e2eRandom(e2eMiB, 3, false)
	e2eWriteAt(t, gpt, head3, p3.Start)

	sys, _ := e2eSystem(t, 0, false, gpt)
	uri := e2eServeSystem(t, sys, false) + "/gpt@2"
	_, noQemu := exec.LookPath("qemu-img") // without it, stat(2) alone shows the space freed
	qemu := noQemu == nil

	step := func(what string, op string, off, n int64, freed bool) {
		t.Helper()
		before := e2eBlocks(t, gpt)
		r := e2eNbdsh(t, py, uri, fmt.Sprintf(`
r = {"op": tryop(%s), "flush": tryop(h.flush)}
r["zeros"] = h.pread(%d, %d) == bytes(%d)
print(json.dumps(r))
`, op, n, off, n))
		e2eExpect(t, what, r, map[string]any{"op": "ok", "flush": "ok", "zeros": true})
		after := e2eBlocks(t, gpt)
		// The file system may spend a block or two of extent tree on the hole.
		if freed && before-after < n/512-64 {
			t.Errorf("%s: st_blocks %d → %d, want about %d fewer", what, before, after, n/512)
		}
		if !freed && after < before {
			t.Errorf("%s (NO_HOLE): st_blocks %d → %d, space was freed", what, before, after)
		}
		if qemu && freed {
			if typ := e2eTypeAt(e2eQemuMap(t, gpt), p2.Start+off, n); typ != 3 {
				t.Errorf("%s: qemu-img map shows type %d at [%d, +%d), want a hole", what, typ, p2.Start+off, n)
			}
		}
	}
	step("trim", "h.trim, 2<<20, 1<<20", 1*e2eMiB, 2*e2eMiB, true)
	step("zero", "h.zero, 1<<20, 3<<20", 3*e2eMiB, e2eMiB, true)
	step("zero no-hole", "h.zero, 1<<20, 4<<20, nbd.CMD_FLAG_NO_HOLE", 4*e2eMiB, e2eMiB, false)
	step("zero fast", "h.zero, 1<<20, 5<<20, nbd.CMD_FLAG_FAST_ZERO", 5*e2eMiB, e2eMiB, true)
	if got := e2eReadAt(t, gpt, p2.Start+6*e2eMiB, e2eMiB); !bytes.Equal(got, e2eRandom(6*e2eMiB, 1, false)[5*e2eMiB:]) {
		t.Error("the data after the trimmed and zeroed ranges changed")
	}

	// Crossing the partition's end.
	r := e2eNbdsh(t, py, uri, `
h.set_strict_mode(0)
size = h.get_size()
r = {"size": size,
     "trim": tryop(h.trim, 131072, size - 65536),
     "zero": tryop(h.zero, 131072, size - 65536),
     "zero_nohole": tryop(h.zero, 131072, size - 65536, nbd.CMD_FLAG_NO_HOLE),
     "trim_beyond": tryop(h.trim, 4096, size),
     "write": tryop(h.pwrite, b"\xff" * 131072, size - 65536),
     "read": tryop(h.pread, 131072, size - 65536),
     "flush": tryop(h.flush)}
print(json.dumps(r))
`)
	e2eExpect(t, "past the end", r, map[string]any{"size": p2.Size, "trim": "EINVAL", "trim_beyond": "EINVAL", "read": "EINVAL", "flush": "ok"})
	// Write-class requests beyond the end: the NBD spec recommends ENOSPC.
	for _, k := range []string{"write", "zero", "zero_nohole"} {
		if r[k] != "ENOSPC" && r[k] != "EINVAL" {
			t.Errorf("past the end: %s = %v, want ENOSPC (or EINVAL)", k, r[k])
		}
	}
	if !bytes.Equal(e2eReadAt(t, gpt, p2.End()-64<<10, 64<<10), tail) {
		t.Error("refused requests changed the partition's last 64 KiB")
	}
	if !bytes.Equal(e2eReadAt(t, gpt, p3.Start, e2eMiB), head3) {
		t.Error("refused requests changed the next partition")
	}
	// Up to the end exactly is allowed, and stops there.
	r = e2eNbdsh(t, py, uri, `
size = h.get_size()
r = {"trim": tryop(h.trim, 65536, size - 65536), "flush": tryop(h.flush)}
r["zeros"] = h.pread(65536, size - 65536) == bytes(65536)
print(json.dumps(r))
`)
	e2eExpect(t, "trim to the end", r, map[string]any{"trim": "ok", "flush": "ok", "zeros": true})
	if !bytes.Equal(e2eReadAt(t, gpt, p3.Start, e2eMiB), head3) {
		t.Error("a trim of partition 2's last 64 KiB changed the next partition")
	}
	if qemu {
		if typ := e2eTypeAt(e2eQemuMap(t, gpt), p3.Start, e2eMiB); typ != 0 {
			t.Errorf("qemu-img map: partition 3's data has type %d", typ)
		}
	}
}

// ---- 7. writable export vs in-process mount ----

// TestE2EExportMountExclusivity: writable exports claim every volume (a mount
// fails with ErrExportedWritable until release); a mounted volume makes
// Exports(false) fail with ErrMounted and claim nothing.
func TestE2EExportMountExclusivity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gpt, mbr := e2eGPT(t, dir), e2eMBR(t, dir)
	sys, imgs := e2eSystem(t, 0, false, gpt, mbr)
	var vols []*volume.Extension
	for _, img := range imgs {
		for _, v := range img.Volumes {
			vols = append(vols, v.Extension.(*volume.Extension))
		}
	}
	if len(vols) != 8 {
		t.Fatalf("%d volumes, want 8", len(vols))
	}
	mountAll := func(want error) {
		t.Helper()
		for i, v := range vols {
			err := v.AcquireMount()
			if !errors.Is(err, want) || (want == nil) != (err == nil) {
				t.Fatalf("volume %d: AcquireMount = %v, want %v", i, err, want)
			}
			if err == nil {
				v.ReleaseMount()
			}
		}
	}

	_, release, err := sys.Exports(false)
	if err != nil {
		t.Fatal(err)
	}
	mountAll(volume.ErrExportedWritable)
	release()
	mountAll(nil)

	// Read-only exports claim nothing.
	_, releaseRO, err := sys.Exports(true)
	if err != nil {
		t.Fatal(err)
	}
	mountAll(nil)
	releaseRO()

	// A mounted volume (the MBR image's last) refuses writable exports, and
	// the failed Exports leaves no claim behind on any other volume.
	for _, held := range []int{0, len(vols) - 1, 4} {
		if err := vols[held].AcquireMount(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sys.Exports(false); !errors.Is(err, volume.ErrMounted) {
			t.Fatalf("Exports(false) with volume %d mounted: %v, want ErrMounted", held, err)
		}
		for i, v := range vols {
			if i == held {
				continue
			}
			if err := v.AcquireMount(); err != nil {
				t.Fatalf("after the failed Exports, volume %d: %v (a claim was left behind)", i, err)
			}
			v.ReleaseMount()
		}
		// Read-only exports are fine while mounted.
		if _, rel, err := sys.Exports(true); err != nil {
			t.Fatalf("Exports(true) while mounted: %v", err)
		} else {
			rel()
		}
		vols[held].ReleaseMount()
		exports, release, err := sys.Exports(false)
		if err != nil {
			t.Fatalf("Exports(false) after the dismount: %v", err)
		}
		if len(exports) != 2+1+3+5 {
			t.Fatalf("%d exports", len(exports))
		}
		mountAll(volume.ErrExportedWritable)
		release()
		release() // a second release gives nothing back twice
		mountAll(nil)
	}
}

// ---- 8. 4096-byte sectors ----

// TestE2E4KSectorGPT: GPT images with 4096-byte sectors, one written by
// vdisk.CreateImage and one by fdisk -b 4096, are detected by AddImage (a
// 4096-byte-sector disk, partitions where fdisk says), and their exports
// advertise a 4096-byte minimum block.
func TestE2E4KSectorGPT(t *testing.T) {
	t.Parallel()
	e2eNeedTool(t, "fdisk")
	e2eNeedTool(t, "nbdinfo")
	dir := t.TempDir()
	byVdisk := filepath.Join(dir, "v4k.img")
	if _, err := vdisk.CreateImage(byVdisk, vdisk.CreateOptions{Size: 32 * e2eMiB, Table: partition.GPT, SectorSize: 4096,
		Parts: []partition.Spec{{Size: 8 * e2eMiB, Type: "linux", Label: "one"}, {Size: partition.Rest, Type: "raw", Label: "two"}}}); err != nil {
		t.Fatal(err)
	}
	byFdisk := filepath.Join(dir, "f4k.img")
	if err := os.WriteFile(byFdisk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(byFdisk, 32*e2eMiB); err != nil {
		t.Fatal(err)
	}
	if r := e2eRun(t, "g\nn\n1\n\n+8M\nn\n2\n\n\nw\n", "fdisk", "-b", "4096", byFdisk); r.code != 0 {
		t.Fatalf("fdisk -b 4096: exit status %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	sys, imgs := e2eSystem(t, 0, false, byVdisk, byFdisk)
	oracle := map[string][]e2ePart{}
	for i, path := range []string{byVdisk, byFdisk} {
		img := imgs[i]
		want := e2eFdisk4096(t, path)
		oracle[img.Name] = want
		dk := img.Disk.Extension.(*disk.Disk)
		if dk.SectorSize != 4096 || img.Disk.SectorSize != 4096 || img.Table.Kind != partition.GPT || img.Table.SectorSize != 4096 {
			t.Fatalf("%s: disk sector size %d, table %v with %d-byte sectors", path, dk.SectorSize, img.Table.Kind, img.Table.SectorSize)
		}
		if len(img.Partitions) != len(want) {
			t.Fatalf("%s: %d partitions, fdisk sees %d", path, len(img.Partitions), len(want))
		}
		for j, p := range img.Table.Partitions {
			if p.Start != want[j].Start || p.Size != want[j].Size {
				t.Errorf("%s partition %d: [%d, +%d), fdisk says [%d, +%d)", path, j+1, p.Start, p.Size, want[j].Start, want[j].Size)
			}
			if img.Partitions[j].SectorSize != 4096 || img.Volumes[j].SectorSize != 4096 {
				t.Errorf("%s partition %d: device sector sizes %d/%d", path, j+1, img.Partitions[j].SectorSize, img.Volumes[j].SectorSize)
			}
		}
	}
	uri := e2eServeSystem(t, sys, false)
	list := e2eNbdinfo(t, "--list", uri)
	if len(list) != 2*3+1 {
		t.Fatalf("nbdinfo --list: %d exports: %+v", len(list), list)
	}
	for _, e := range list {
		if e.MinBlock != 4096 {
			t.Errorf("export %q: block_size_minimum %d, want 4096", e.Name, e.MinBlock)
		}
		if name, n, ok := strings.Cut(e.Name, "@"); ok {
			i, _ := strconv.Atoi(n)
			if want := oracle[name][i-1].Size; e.Size != want {
				t.Errorf("export %q: size %d, fdisk says %d", e.Name, e.Size, want)
			}
		}
	}

	t.Run("nbdsh", func(t *testing.T) {
		py := e2eNeedNbdsh(t)
		for _, name := range []string{"v4k", "f4k"} {
			r := e2eNbdsh(t, py, uri+"/"+name+"@2", `
h.set_strict_mode(0)
r = {"min": h.get_block_size(nbd.SIZE_MINIMUM),
     "write": tryop(h.pwrite, bytes(range(256)) * 16, 4096),
     "small": tryop(h.pwrite, b"x" * 512, 512),
     "flush": tryop(h.flush)}
print(json.dumps(r))
`)
			e2eExpect(t, name+"@2", r, map[string]any{"min": 4096, "write": "ok", "small": "EINVAL", "flush": "ok"})
			p := oracle[name][1]
			path := filepath.Join(dir, name+".img")
			want := bytes.Repeat(func() []byte {
				b := make([]byte, 256)
				for i := range b {
					b[i] = byte(i)
				}
				return b
			}(), 16)
			if !bytes.Equal(e2eReadAt(t, path, p.Start+4096, 4096), want) {
				t.Errorf("%s@2: the write is not at the partition's offset %d + 4096", name, p.Start)
			}
			if !bytes.Equal(e2eReadAt(t, path, p.Start, 4096), make([]byte, 4096)) {
				t.Errorf("%s@2: a refused 512-byte write changed the partition's first sector", name)
			}
		}
	})
}

// ---- 9. the CLI ----

// e2eBuildCLI builds cmd/vdisk into a temporary directory.
func e2eBuildCLI(t *testing.T) string {
	t.Helper()
	goTool := e2eNeedTool(t, "go")
	bin := filepath.Join(t.TempDir(), "vdisk")
	e2eMust(t, goTool, "build", "-o", bin, "./cmd/vdisk")
	return bin
}

// e2eOneLine checks that stderr is exactly one line mentioning every word.
func e2eOneLine(t *testing.T, what, stderr string, words ...string) {
	t.Helper()
	s := strings.TrimSuffix(stderr, "\n")
	if s == "" || strings.Contains(s, "\n") || !strings.HasPrefix(s, "vdisk: ") {
		t.Errorf("%s: stderr is not one line starting with \"vdisk: \":\n%s", what, stderr)
	}
	for _, w := range words {
		if !strings.Contains(s, w) {
			t.Errorf("%s: stderr %q does not name %q", what, s, w)
		}
	}
}

// e2eLockedBuffer collects a child's output while the test reads it.
type e2eLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *e2eLockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *e2eLockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestE2ECLI runs the vdisk binary: usage errors exit 2 with one line naming
// the problem, failures exit 1 naming the path, create/info agree with
// sfdisk, and `vdisk serve` serves until SIGTERM, then flushes and exits 0.
func TestE2ECLI(t *testing.T) {
	t.Parallel()
	bin := e2eBuildCLI(t)
	dir := t.TempDir()

	t.Run("create usage errors", func(t *testing.T) {
		img := filepath.Join(dir, "bad.img")
		for _, c := range []struct {
			args  []string
			words []string
		}{
			{[]string{img, "--size", "lots"}, []string{"--size", "lots"}},
			{[]string{img, "--size", "64MiB", "--table", "zfs"}, []string{"--table", "zfs"}},
			{[]string{img, "--size", "64MiB", "--part", "8MiB:ntfs"}, []string{"ntfs"}},
			{[]string{img, "--size", "64MiB", "--part", "banana"}, []string{"banana", "SIZE:TYPE"}},
			{[]string{img, "--size", "64MiB", "--part", "0:linux"}, []string{"0:linux", "size"}},
			{[]string{"--size", "64MiB"}, []string{"IMAGE"}},
			{[]string{img, "other.img", "--size", "64MiB"}, []string{"IMAGE"}},
			{[]string{img, "--size", "64MiB", "--bogus"}, []string{"bogus"}},
		} {
			r := e2eRun(t, "", bin, append([]string{"create"}, c.args...)...)
			what := fmt.Sprintf("vdisk create %q", c.args)
			if r.code != 2 {
				t.Errorf("%s: exit status %d, want 2\n%s", what, r.code, r.stderr)
			}
			e2eOneLine(t, what, r.stderr, c.words...)
			if _, err := os.Stat(img); err == nil {
				t.Fatalf("%s created the image", what)
			}
		}
	})

	t.Run("create and info", func(t *testing.T) {
		e2eNeedTool(t, "sfdisk")
		img := filepath.Join(dir, "made.img")
		r := e2eRun(t, "", bin, "create", img, "--size", "48MiB", "--table", "mbr",
			"--part", "8MiB:linux", "--part", "8MiB:raw", "--part", "8MiB:linux", "--part", "4MiB:linux", "--part", "rest:raw")
		if r.code != 0 {
			t.Fatalf("vdisk create: exit status %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = e2eRun(t, "", bin, "info", img, "--json")
		if r.code != 0 {
			t.Fatalf("vdisk info: exit status %d\n%s", r.code, r.stderr)
		}
		var info vdisk.ImageInfo
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
			t.Fatalf("vdisk info --json: %v\n%s", err, r.stdout)
		}
		want := e2eSfdisk(t, img)
		if info.Table != "mbr" || info.Size != 48*e2eMiB || info.SectorSize != 512 || len(info.Partitions) != len(want) {
			t.Fatalf("vdisk info: %+v, sfdisk sees %v", info, want)
		}
		for i, p := range info.Partitions {
			if p.Number != i+1 || p.Start != want[i].Start || p.Size != want[i].Size || p.Export != fmt.Sprintf("made@%d", i+1) {
				t.Errorf("vdisk info partition %d: %+v, sfdisk says %+v", i+1, p, want[i])
			}
		}
		// An existing file is not replaced.
		r = e2eRun(t, "", bin, "create", img, "--size", "8MiB")
		if r.code != 1 {
			t.Errorf("vdisk create over an existing file: exit status %d, want 1", r.code)
		}
		e2eOneLine(t, "create over an existing file", r.stderr, img, "exists")
	})

	t.Run("info of a missing file", func(t *testing.T) {
		missing := filepath.Join(dir, "no-such.img")
		r := e2eRun(t, "", bin, "info", missing)
		if r.code != 1 {
			t.Errorf("vdisk info %s: exit status %d, want 1", missing, r.code)
		}
		e2eOneLine(t, "vdisk info of a missing file", r.stderr, missing)
		r = e2eRun(t, "", bin, "serve", "--listen", "127.0.0.1:0", missing)
		if r.code != 1 {
			t.Errorf("vdisk serve %s: exit status %d, want 1", missing, r.code)
		}
		e2eOneLine(t, "vdisk serve of a missing file", r.stderr, missing)
		r = e2eRun(t, "", bin, "serve")
		if r.code != 2 {
			t.Errorf("vdisk serve without an image: exit status %d, want 2", r.code)
		}
		e2eOneLine(t, "vdisk serve without an image", r.stderr, "IMAGE")
	})

	t.Run("serve until SIGTERM", func(t *testing.T) {
		e2eNeedTool(t, "nbdinfo")
		e2eNeedTool(t, "nbdcopy")
		e2eNeedTool(t, "sfdisk")
		img := filepath.Join(dir, "served.img")
		if r := e2eRun(t, "", bin, "create", img, "--size", "32MiB", "--table", "gpt", "--part", "8MiB:linux:one", "--part", "rest:raw:two"); r.code != 0 {
			t.Fatalf("vdisk create: %d\n%s", r.code, r.stderr)
		}
		parts := e2eSfdisk(t, img)
		srv := e2eStartServe(t, bin, img)
		addr, stderr := srv.addr, srv.stderr

		list := e2eNbdinfo(t, "--list", "nbd://"+addr)
		if len(list) != 4 || list[2].Name != "served@1" || list[2].Size != parts[0].Size || list[3].Size != parts[1].Size {
			t.Fatalf("nbdinfo --list of vdisk serve: %+v", list)
		}
		src := filepath.Join(dir, "served-src.bin")
		data := e2eRandom(int(parts[0].Size), 8, true)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		e2eMust(t, "nbdcopy", src, "nbd://"+addr+"/served@1") // no --flush: the server's shutdown flushes

		// An idle client stays connected while the server stops.
		var idle *exec.Cmd
		if py, err := exec.LookPath("/usr/bin/python3"); err == nil && exec.Command(py, "-c", "import nbd").Run() == nil {
			idle = exec.Command(py, "-m", "nbd", "-u", "nbd://"+addr+"/served@2", "-c",
				`import sys; h.pwrite(b"idle" * 1024, 0); print("ready", flush=True); sys.stdin.read()`)
			stdin, err := idle.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := idle.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := idle.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stdin.Close(); idle.Process.Kill(); idle.Wait() })
			ready := make(chan string, 1)
			go func() {
				b := make([]byte, 6)
				n, _ := stdout.Read(b)
				ready <- string(b[:n])
			}()
			select {
			case s := <-ready:
				if !strings.HasPrefix(s, "ready") {
					t.Fatalf("idle nbdsh client: %q", s)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("idle nbdsh client did not connect")
			}
		}

		if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-srv.done:
			if srv.err != nil {
				t.Fatalf("vdisk serve after SIGTERM: %v (want exit status 0)\n%s", srv.err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("vdisk serve did not exit within 30 s of SIGTERM\n%s", stderr.String())
		}
		if !strings.Contains(stderr.String(), "flushing") {
			t.Errorf("vdisk serve did not say it flushed:\n%s", stderr.String())
		}
		if !bytes.Equal(e2eReadAt(t, img, parts[0].Start, parts[0].Size), data) {
			t.Error("the data nbdcopy wrote through vdisk serve is not at partition 1's offset")
		}
		if idle != nil && !bytes.Equal(e2eReadAt(t, img, parts[1].Start, 4096), bytes.Repeat([]byte("idle"), 1024)) {
			t.Error("the idle client's write is not at partition 2's offset")
		}
	})
}

// e2eProcess is a running `vdisk serve`.
type e2eProcess struct {
	cmd    *exec.Cmd
	stderr *e2eLockedBuffer
	addr   string
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, once done
}

// e2eStart starts cmd with its stderr collected; the process is killed at
// the end of the test if it is still running.
func e2eStart(t *testing.T, cmd *exec.Cmd) *e2eProcess {
	t.Helper()
	p := &e2eProcess{cmd: cmd, stderr: &e2eLockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// e2eStartServe starts `vdisk serve --listen 127.0.0.1:PORT IMAGE` and
// waits (bounded) until nbdinfo can list it; the process is killed at the
// end of the test if it is still running. A port taken between choosing and
// binding it is retried.
func e2eStartServe(t *testing.T, bin, img string) *e2eProcess {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		p := e2eStart(t, exec.Command(bin, "serve", "--listen", addr, img))
		p.addr = addr
		if e2eWaitServing(t, p) {
			return p
		}
	}
	t.Fatal("no free port for vdisk serve after 3 attempts")
	return nil
}

// e2eWaitServing polls with nbdinfo until p answers (true) or p exited
// because its port was taken (false).
func e2eWaitServing(t *testing.T, p *e2eProcess) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-p.done:
			if strings.Contains(p.stderr.String(), "address already in use") {
				return false
			}
			t.Fatalf("vdisk serve exited at start: %v\n%s", p.err, p.stderr.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, "nbdinfo", "--list", "nbd://"+p.addr).Run()
		cancel()
		if err == nil {
			return true
		}
		if time.Now().After(deadline) {
			t.Fatalf("vdisk serve on %s did not answer nbdinfo within 20 s\n%s", p.addr, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
