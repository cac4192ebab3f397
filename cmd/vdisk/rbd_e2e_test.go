//go:build rbd

package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/rbdtest"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// The RBD tests of the CLI: vdisk with RBD images in a Ceph cluster
// (rbdtest's), judged by Ceph's own tools (rbd export, rbd diff, rbd lock
// and snapshot commands), libnbd's (nbdcopy, nbdinfo, the Python binding),
// QEMU's RBD driver (qemu-img compare), fio's verification, dosfstools and
// mtools. The vdisk they run is this test binary, built with the rbd tag,
// which TestMain puts on PATH under that name.

// rbdCLI is what the RBD tests run: the vdisk on PATH and the cluster's
// ceph.conf.
type rbdCLI struct {
	bin, conf string
}

var goraceOnce sync.Once

func newRBDCLI(t *testing.T) rbdCLI {
	t.Helper()
	conf := rbdtest.Conf(t)
	bin, err := exec.LookPath("vdisk")
	if err != nil {
		t.Fatalf("vdisk is not on PATH (TestMain puts this test binary there): %v", err)
	}
	// Under -race each vdisk would sleep a second at exit for late
	// reports (as in TestScripts).
	goraceOnce.Do(func() { os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=10")) })
	return rbdCLI{bin: bin, conf: conf}
}

// args puts --ceph-conf after a command's arguments (vdisk moves global
// flags in front).
func (c rbdCLI) args(args []string) []string { return append(args, "--ceph-conf", c.conf) }

// run runs vdisk, whatever its exit status.
func (c rbdCLI) run(t *testing.T, args ...string) testsupport.Result {
	t.Helper()
	return testsupport.Cmd{Timeout: 3 * time.Minute}.Run(t, c.bin, c.args(args)...)
}

// must runs vdisk, failing the test unless it exits 0.
func (c rbdCLI) must(t *testing.T, args ...string) string {
	t.Helper()
	r := c.run(t, args...)
	if r.Code != 0 {
		t.Fatalf("vdisk %q: exit status %d\n%s", args, r.Code, r.Output())
	}
	return r.Stdout
}

// create makes a fresh image with vdisk create ARGS and returns its name
// and its operand (rbd:POOL/IMAGE).
func (c rbdCLI) create(t *testing.T, args ...string) (image, spec string) {
	t.Helper()
	image = rbdtest.Image(t)
	spec = "rbd:" + rbdName(image)
	c.must(t, append([]string{"create", spec}, args...)...)
	return image, spec
}

// serve starts `vdisk serve ARGS` on a loopback port.
func (c rbdCLI) serve(t *testing.T, args ...string) *testsupport.Process {
	t.Helper()
	return testsupport.StartServe(t, c.bin, c.args(args)...)
}

// stop ends a server with SIGTERM, which must flush, close the image
// (releasing its lock) and exit 0.
func stop(t *testing.T, p *testsupport.Process) {
	t.Helper()
	if err := p.Stop(time.Minute); err != nil {
		t.Fatalf("vdisk serve: %v\n%s", err, p.Stderr())
	}
}

// rbdName is POOL/IMAGE[@SNAP], as the rbd command names an image.
func rbdName(image string) string { return rbdtest.Pool + "/" + image }

// rbdExport is `rbd export` of an image or snapshot, into a file.
func rbdExport(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "export.img")
	rbdtest.Tool(t, "rbd", "export", "--no-progress", name, out)
	return out
}

// rbdDiff is the data of `rbd diff` (--whole-object: per object, as the
// object map with fast-diff answers), merged into [start, end) ranges.
func rbdDiff(t *testing.T, name string, whole bool) [][2]int64 {
	t.Helper()
	var ranges [][2]int64
	for _, d := range rbdtest.Diff(t, name, whole) {
		if d.Data {
			ranges = append(ranges, [2]int64{d.Offset, d.Offset + d.Length})
		}
	}
	return mergeRanges(ranges)
}

// mergeRanges sorts ranges and joins those that touch or overlap.
func mergeRanges(in [][2]int64) [][2]int64 {
	in = slices.Clone(in)
	slices.SortFunc(in, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	var out [][2]int64
	for _, r := range in {
		if n := len(out); n > 0 && r[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

// mapData is the data (type 0) of an nbdinfo map as merged ranges,
// shifted by shift.
func mapData(m []testworld.Extent, shift int64) [][2]int64 {
	var out [][2]int64
	for _, e := range m {
		if e.Type&1 == 0 {
			out = append(out, [2]int64{e.Offset + shift, e.Offset + e.Length + shift})
		}
	}
	return mergeRanges(out)
}

// clip is ranges cut to [start, end).
func clip(ranges [][2]int64, start, end int64) [][2]int64 {
	var out [][2]int64
	for _, r := range ranges {
		if s, e := max(r[0], start), min(r[1], end); s < e {
			out = append(out, [2]int64{s, e})
		}
	}
	return out
}

// covered reports whether [s, e) lies within one of ranges.
func covered(ranges [][2]int64, s, e int64) bool {
	for _, r := range ranges {
		if s >= r[0] && e <= r[1] {
			return true
		}
	}
	return false
}

// holderRE finds the client a server names as its lock holder.
var holderRE = regexp.MustCompile(`holding its exclusive lock as (client\.\d+)`)

// A partition of an RBD image served by vdisk, written by nbdcopy: `rbd
// export` holds nbdcopy's bytes at the partition's offset (found by
// sfdisk) and zeros around them; `rbd diff` lists the written extents and
// nothing else but the GPT's; `nbdinfo --map` of the whole disk and of the
// partition matches `rbd diff --whole-object` (fast-diff answers per
// object).
func TestRBDServePartitionNBDOracles(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdcopy")
	testsupport.NeedTool(t, "sfdisk")
	c := newRBDCLI(t)
	image, spec := c.create(t, "--size", "64MiB", "--table", "gpt", "--part", "16MiB:raw", "--part", "rest:raw")

	// 12 MiB of data: 1 MiB random runs with 1 MiB holes between them,
	// which nbdcopy sends as zeroing (or skips) rather than writes.
	const chunk = 1 << 20
	data := make([]byte, 12*chunk)
	var written [][2]int64
	for off := 0; off < len(data); off += 2 * chunk {
		copy(data[off:], testsupport.Random(chunk, byte(off/chunk), false))
		written = append(written, [2]int64{int64(off), int64(off + chunk)})
	}
	src := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}

	srv := c.serve(t, spec)
	if !holderRE.MatchString(srv.Stderr()) {
		t.Errorf("vdisk serve does not say which client holds the lock:\n%s", srv.Stderr())
	}
	uri := "nbd://" + srv.Addr + "/" + image + "@2"
	testsupport.WaitNBD(t, srv, uri)
	testsupport.Must(t, "nbdcopy", src, uri)
	stop(t, srv)

	exported := rbdExport(t, rbdName(image))
	parts := testsupport.Sfdisk(t, exported)
	if len(parts) != 2 {
		t.Fatalf("sfdisk finds %d partitions in the rbd export, want 2", len(parts))
	}
	p2 := parts[1]
	if got := testsupport.ReadAt(t, exported, p2.Start, int64(len(data))); !bytes.Equal(got, data) {
		t.Fatalf("rbd export at partition 2's offset %d differs from what nbdcopy wrote", p2.Start)
	}
	if rest := testsupport.ReadAt(t, exported, p2.Start+int64(len(data)), p2.Size-int64(len(data))); !bytes.Equal(rest, make([]byte, len(rest))) {
		t.Fatal("rbd export: partition 2 after nbdcopy's data is not zero")
	}
	if p1 := testsupport.ReadAt(t, exported, parts[0].Start, parts[0].Size); !bytes.Equal(p1, make([]byte, len(p1))) {
		t.Fatal("rbd export: partition 1, which nobody wrote, is not zero")
	}

	// rbd diff lists every extent nbdcopy wrote and, besides them, only
	// the GPT's (before partition 1, after the last one). With fast-diff
	// (as vdisk creates images) it answers per 4 MiB object: each object
	// it lists holds some of what was written.
	diff := rbdDiff(t, rbdName(image), false)
	var wrote [][2]int64
	for _, w := range written {
		wrote = append(wrote, [2]int64{p2.Start + w[0], p2.Start + w[1]})
		if !covered(diff, p2.Start+w[0], p2.Start+w[1]) {
			t.Errorf("rbd diff %v does not list the write at %d+%d", diff, p2.Start+w[0], w[1]-w[0])
		}
	}
	wrote = append(wrote, [2]int64{0, parts[0].Start}, [2]int64{p2.End(), 64 << 20})
	const object = 4 << 20
	for _, d := range diff {
		for o := d[0] / object * object; o < d[1]; o += object {
			if len(clip(wrote, max(o, d[0]), min(o+object, d[1]))) == 0 {
				t.Errorf("rbd diff lists %d+%d, in an object nothing was written to", max(o, d[0]), min(o+object, d[1])-max(o, d[0]))
			}
		}
	}

	// nbdinfo --map through vdisk matches rbd diff --whole-object, on the
	// whole disk and on the partition (at its offset). Served read-only
	// this time: no lock, so rbd diff runs beside it.
	whole := rbdDiff(t, rbdName(image), true)
	srv = c.serve(t, spec, "--read-only")
	base := "nbd://" + srv.Addr + "/" + image
	testsupport.WaitNBD(t, srv, base)
	if got := mapData(testworld.NbdinfoMap(t, base), 0); !slices.Equal(got, whole) {
		t.Errorf("nbdinfo --map of the whole disk: data %v\nrbd diff --whole-object: %v", got, whole)
	}
	if got, want := mapData(testworld.NbdinfoMap(t, base+"@2"), p2.Start), clip(whole, p2.Start, p2.End()); !slices.Equal(got, want) {
		t.Errorf("nbdinfo --map of partition 2 (at %d): data %v\nrbd diff --whole-object there: %v", p2.Start, got, want)
	}
	stop(t, srv)
}

// fio writes through vdisk serving an RBD image, verifying each block with
// crc32c as it reads it back; then QEMU's own RBD driver reads the image
// in Ceph and qemu-img compare finds it equal to what vdisk serves.
func TestRBDFioVerifyThenQemuCompare(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fio")
	testsupport.NeedTool(t, "qemu-img")
	c := newRBDCLI(t)
	image, spec := c.create(t, "--size", "64MiB", "--table", "gpt", "--part", "rest:raw")
	srv := c.serve(t, spec)
	uri := "nbd://" + srv.Addr + "/" + image + "@1"
	testsupport.WaitNBD(t, srv, uri)
	// --end_fsync: an NBD FLUSH, rbd_flush, so that another client of
	// the cluster (QEMU's driver) sees every write.
	code, jobs, out := testworld.Fio(t, "--name=rbd", "--ioengine=nbd", "--uri="+uri, "--rw=randwrite",
		"--bsrange=4k-128k", "--size=40M", "--iodepth=8", "--verify=crc32c", "--do_verify=1",
		"--verify_fatal=1", "--end_fsync=1", "--randseed=19")
	if code != 0 || len(jobs) != 1 || jobs[0].Error != 0 || jobs[0].Write.Bytes < 40<<20 {
		t.Fatalf("fio: exit status %d, jobs %+v\n%s", code, jobs, out)
	}
	qemuRBD := fmt.Sprintf("rbd:%s:conf=%s", rbdName(image), c.conf)
	r := testsupport.Run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", "nbd://"+srv.Addr+"/"+image, qemuRBD)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Images are identical") {
		t.Fatalf("qemu-img compare vdisk's export with %s: exit status %d\n%s", qemuRBD, r.Code, r.Output())
	}
	stop(t, srv)
	// And once vdisk has closed it: the same bytes, read by QEMU's driver
	// and by rbd export.
	plain := rbdExport(t, rbdName(image))
	r = testsupport.Run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", plain, qemuRBD)
	if r.Code != 0 {
		t.Fatalf("qemu-img compare rbd export with %s: exit status %d\n%s", qemuRBD, r.Code, r.Output())
	}
}

// rbdTree writes a small tree to copy in: nested directories, long and
// Unicode names, an empty file and one of several clusters.
func rbdTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	files := map[string][]byte{
		"README.TXT":                         []byte("vdisk on Ceph\n"),
		"A long name with spaces.txt":        []byte("long\n"),
		"Ünïcödé café.txt":                   []byte("utf-16 on disk\n"),
		"boot/EFI/BOOT/BOOTX64.EFI":          testsupport.Random(300<<10, 7, false),
		"boot/empty":                         nil,
		"deep/er/and/deeper/still/leaf.conf": []byte("x=1\n"),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkFATExport checks a FAT partition of an rbd export with dosfstools
// and mtools: fsck.fat -n finds nothing wrong, and mcopy reads back a tree
// equal (diff -r) to want.
func checkFATExport(t *testing.T, exported string, p testsupport.Part, want string) {
	t.Helper()
	testsupport.FsckPartition(t, exported, p.Start, p.Size)
	back := filepath.Join(t.TempDir(), "back")
	if err := os.Mkdir(back, 0o755); err != nil {
		t.Fatal(err)
	}
	testsupport.Cmd{Env: []string{"MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8"}}.Must(t, "mcopy", "-s", "-n", "-m", "-i",
		fmt.Sprintf("%s@@%d", exported, p.Start), "::/*", back)
	if out, err := exec.Command("diff", "-r", want, back).CombinedOutput(); err != nil {
		t.Fatalf("what mcopy reads from the rbd export differs from what vdisk cp copied in:\n%s", out)
	}
}

// The FAT driver on RBD: vdisk create makes a GPT image with FAT
// partitions in Ceph, vdisk cp -r fills one, and the image as `rbd
// export` gives it passes fsck.fat, mtools reads the tree back, and vdisk
// itself lists it.
func TestRBDFATVolumes(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fsck.fat")
	testsupport.NeedTool(t, "mcopy")
	testsupport.NeedTool(t, "sfdisk")
	c := newRBDCLI(t)
	image, spec := c.create(t, "--size", "128MiB", "--table", "gpt", "--part", "40MiB:esp:EFI", "--part", "rest:fat32:DATA")
	tree := rbdTree(t)
	c.must(t, "cp", "-r", tree+"/.", spec+"@2:/")
	c.must(t, "cp", "-r", filepath.Join(tree, "boot")+"/.", spec+"@1:/")
	if out := c.must(t, "ls", "-R", spec+"@2:/"); !strings.Contains(out, "deep/er/and/deeper/still/leaf.conf") {
		t.Errorf("vdisk ls -R does not list the copied tree:\n%s", out)
	}
	if got := c.must(t, "cat", spec+"@2:/Ünïcödé café.txt"); got != "utf-16 on disk\n" {
		t.Errorf("vdisk cat = %q", got)
	}
	// Shell completion looks into the image in the cluster of $CEPH_CONF.
	comp := testsupport.Cmd{Env: []string{"CEPH_CONF=" + c.conf}}.Must(t, c.bin, "ls", spec+"@2:/dee", "--generate-bash-completion")
	if comp != spec+"@2:/deep/\n" {
		t.Errorf("completing %s@2:/dee: %q", spec, comp)
	}
	info := c.must(t, "info", spec, "--json")
	if !strings.Contains(info, `"label": "DATA"`) || !strings.Contains(info, `"path": "`+spec+`"`) {
		t.Errorf("vdisk info --json:\n%s", info)
	}

	exported := rbdExport(t, rbdName(image))
	parts := testsupport.Sfdisk(t, exported)
	if len(parts) != 2 {
		t.Fatalf("sfdisk finds %d partitions in the rbd export, want 2", len(parts))
	}
	checkFATExport(t, exported, parts[1], tree)
	checkFATExport(t, exported, parts[0], filepath.Join(tree, "boot"))
	if out, err := exec.Command("fatlabel", testsupport.ExtractPartition(t, exported, parts[1].Start, parts[1].Size)).Output(); err != nil || strings.TrimSpace(string(out)) != "DATA" {
		t.Errorf("fatlabel of partition 2: %q, %v; want DATA", out, err)
	}

	// A partition's bytes out of RBD (vdisk cp IMAGE@N FILE) are those of
	// rbd export at its offset; written back into the other partition
	// (vdisk cp FILE IMAGE@N), that one becomes the same volume, as rbd
	// export, fsck.fat and mtools see it.
	raw := filepath.Join(t.TempDir(), "p2.vfat")
	c.must(t, "cp", spec+"@2", raw)
	if b, err := os.ReadFile(raw); err != nil || !bytes.Equal(b, testsupport.ReadAt(t, exported, parts[1].Start, parts[1].Size)) {
		t.Fatalf("vdisk cp %s@2 differs from rbd export's partition 2 (%v)", spec, err)
	}
	c.must(t, "create", "rbd:"+rbdName(image)+"-copy", "--size", "128MiB", "--table", "gpt", "--part", "40MiB:raw", "--part", "rest:raw")
	c.must(t, "cp", raw, "rbd:"+rbdName(image)+"-copy@2")
	copied := rbdExport(t, rbdName(image)+"-copy")
	cparts := testsupport.Sfdisk(t, copied)
	checkFATExport(t, copied, cparts[1], tree)
}

// Two vdisk servers, one image: the first holds the exclusive lock, so a
// second writable server fails, naming the first's client (the one `rbd
// lock ls` lists); read-only servers start beside it, without multi-conn
// for the head, which the writer changes. Killed with SIGKILL, the first
// cannot release its lock: the next writable server takes it once the
// OSDs time out the dead client's watch (librbd breaks the lock and
// blocklists the dead client, as RBD defines recovery), and its writes
// land.
func TestRBDTwoServersOneWriter(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdcopy")
	c := newRBDCLI(t)
	image, spec := c.create(t, "--size", "8MiB", "--table", "none")

	first := c.serve(t, spec)
	m := holderRE.FindStringSubmatch(first.Stderr())
	if m == nil {
		t.Fatalf("the first server does not name its client:\n%s", first.Stderr())
	}
	holder := m[1]
	if locks := string(rbdtest.Tool(t, "rbd", "lock", "ls", rbdName(image))); !strings.Contains(locks, holder) {
		t.Fatalf("rbd lock ls does not list %s, the client the server named:\n%s", holder, locks)
	}
	second := c.run(t, "serve", "--listen", "127.0.0.1:0", spec)
	if second.Code != 1 {
		t.Fatalf("a second writable server: exit status %d, want 1\n%s", second.Code, second.Output())
	}
	testsupport.OneLine(t, "a second writable server", second.Stderr, spec, "exclusive lock is held by another client", holder)
	for _, cmd := range [][]string{{"cp", "/dev/null", spec}, {"format", spec}} {
		r := c.run(t, cmd...)
		if r.Code != 1 || !strings.Contains(r.Stderr, holder) {
			t.Errorf("vdisk %q beside the server: exit status %d, want 1 naming %s\n%s", cmd, r.Code, holder, r.Output())
		}
	}

	// Readers share the image, but do not offer multi-conn for a head
	// that a writer changes.
	reader := c.serve(t, spec, "--read-only")
	exports := testworld.Nbdinfo(t, "--list", "nbd://"+reader.Addr)
	if len(exports) == 0 {
		t.Fatal("nbdinfo lists no exports of the read-only server")
	}
	for _, e := range exports {
		if !e.ReadOnly || e.CanMultiConn {
			t.Errorf("read-only server of a head: export %q read-only=%v multi-conn=%v, want read-only without multi-conn", e.Name, e.ReadOnly, e.CanMultiConn)
		}
	}
	for _, e := range testworld.Nbdinfo(t, "--list", "nbd://"+first.Addr) {
		if e.ReadOnly || !e.CanMultiConn {
			t.Errorf("the writer: export %q read-only=%v multi-conn=%v, want writable with multi-conn", e.Name, e.ReadOnly, e.CanMultiConn)
		}
	}
	stop(t, reader)

	// SIGKILL: no close, no lock release.
	if err := first.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait(t, 30*time.Second)
	began := time.Now()
	third := c.serve(t, spec)
	t.Logf("the next writer took the dead server's lock after %v", time.Since(began).Round(100*time.Millisecond))
	m = holderRE.FindStringSubmatch(third.Stderr())
	if m == nil || m[1] == holder {
		t.Fatalf("the new writer names its client as %v, want one other than %s:\n%s", m, holder, third.Stderr())
	}
	if locks := string(rbdtest.Tool(t, "rbd", "lock", "ls", rbdName(image))); !strings.Contains(locks, m[1]) || strings.Contains(locks, holder+" ") {
		t.Errorf("rbd lock ls after the takeover, want only %s:\n%s", m[1], locks)
	}
	data := testsupport.Random(1<<20, 3, false)
	src := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	testsupport.Must(t, "nbdcopy", src, "nbd://"+third.Addr+"/"+image)
	stop(t, third)
	if got := testsupport.ReadAt(t, rbdExport(t, rbdName(image)), 0, int64(len(data))); !bytes.Equal(got, data) {
		t.Fatal("rbd export after the new writer's nbdcopy does not hold its data")
	}
	if locks := strings.TrimSpace(string(rbdtest.Tool(t, "rbd", "lock", "ls", rbdName(image)))); locks != "" {
		t.Errorf("the image is still locked after the server stopped:\n%s", locks)
	}
}

// sha256Hex is the SHA-256 of a file, in hex.
func sha256Hex(t *testing.T, path string) string {
	h := testsupport.HashFile(t, path)
	return hex.EncodeToString(h[:])
}

// Ten CI runners' disks: copy-on-write clones of one golden snapshot made
// with vdisk create --clone-of, each written differently with vdisk cp.
// Each clone's rbd export is a clean FAT volume with the golden files and
// its own; the golden snapshot's rbd export keeps its SHA-256, and Ceph
// lists the clones as its children.
func TestRBDClonesOfGoldenSnapshot(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fsck.fat")
	testsupport.NeedTool(t, "mtype")
	testsupport.NeedTool(t, "sfdisk")
	c := newRBDCLI(t)
	golden, spec := c.create(t, "--size", "64MiB", "--table", "gpt", "--part", "rest:fat32:GOLD")
	tree := rbdTree(t)
	c.must(t, "cp", "-r", tree+"/.", spec+"@1:/")
	rbdtest.Tool(t, "rbd", "snap", "create", rbdName(golden)+"@v1")
	before := sha256Hex(t, rbdExport(t, rbdName(golden)+"@v1"))

	// The clone refuses to be made twice, and needs a snapshot.
	const n = 10
	clones := make([]string, n)
	for i := range clones {
		clones[i] = fmt.Sprintf("%s-clone%d", golden, i)
		out := c.must(t, "create", "rbd:"+rbdName(clones[i]), "--clone-of", spec+"@v1")
		if !strings.Contains(out, "clone of "+spec+"@v1") {
			t.Errorf("vdisk create --clone-of says %q", out)
		}
	}
	if r := c.run(t, "create", "rbd:"+rbdName(clones[0]), "--clone-of", spec+"@v1"); r.Code != 1 || !strings.Contains(r.Stderr, "exists") {
		t.Errorf("cloning onto an existing image: exit status %d\n%s", r.Code, r.Output())
	}
	if r := c.run(t, "create", "rbd:"+rbdName(golden)+"-x", "--clone-of", spec+"@nosnap"); r.Code != 1 {
		t.Errorf("cloning a missing snapshot: exit status %d, want 1\n%s", r.Code, r.Output())
	}

	// Each runner writes its own file, and changes or removes a golden one.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	errs := make([]string, n)
	for i, clone := range clones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			vol := "rbd:" + rbdName(clone) + "@1:/"
			for _, args := range [][]string{
				{"cp", "-", vol + fmt.Sprintf("runner-%d.txt", i)},
				{"rm", vol + "README.TXT"},
			} {
				cmd := exec.Command(c.bin, c.args(args)...)
				cmd.Stdin = strings.NewReader(fmt.Sprintf("runner %d\n", i))
				if i%2 == 1 && args[0] == "rm" {
					args = []string{"cp", "-", vol + "README.TXT"}
					cmd = exec.Command(c.bin, c.args(args)...)
					cmd.Stdin = strings.NewReader(strings.Repeat(fmt.Sprintf("changed by runner %d\n", i), 1000))
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Sprintf("vdisk %q: %v\n%s", args, err, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}

	mtools := testsupport.Cmd{Env: []string{"MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8"}}
	for i, clone := range clones {
		exported := rbdExport(t, rbdName(clone))
		parts := testsupport.Sfdisk(t, exported)
		if len(parts) != 1 {
			t.Fatalf("clone %d: sfdisk finds %d partitions", i, len(parts))
		}
		testsupport.FsckPartition(t, exported, parts[0].Start, parts[0].Size)
		img := fmt.Sprintf("%s@@%d", exported, parts[0].Start)
		if got := mtools.Must(t, "mtype", "-i", img, fmt.Sprintf("::/runner-%d.txt", i)); got != fmt.Sprintf("runner %d\n", i) {
			t.Errorf("clone %d: runner-%d.txt holds %q", i, i, got)
		}
		dir := mtools.Must(t, "mdir", "-b", "-i", img, "::/")
		for j := range n {
			if j != i && strings.Contains(dir, fmt.Sprintf("runner-%d.txt", j)) {
				t.Errorf("clone %d holds runner %d's file:\n%s", i, j, dir)
			}
		}
		readme := mtools.Run(t, "mtype", "-i", img, "::/README.TXT")
		switch {
		case i%2 == 0 && readme.Code == 0:
			t.Errorf("clone %d: README.TXT is still there after vdisk rm", i)
		case i%2 == 1 && readme.Stdout != strings.Repeat(fmt.Sprintf("changed by runner %d\n", i), 1000):
			t.Errorf("clone %d: README.TXT is not what runner %d wrote (%d bytes)", i, i, len(readme.Stdout))
		}
		if got := mtools.Must(t, "mtype", "-i", img, "::/boot/EFI/BOOT/BOOTX64.EFI"); !bytes.Equal([]byte(got), testsupport.Random(300<<10, 7, false)) {
			t.Errorf("clone %d: the golden BOOTX64.EFI reads otherwise", i)
		}
	}
	if after := sha256Hex(t, rbdExport(t, rbdName(golden)+"@v1")); after != before {
		t.Errorf("the golden snapshot's rbd export changed: sha256 %s, was %s", after, before)
	}
	children := string(rbdtest.Tool(t, "rbd", "children", rbdName(golden)+"@v1"))
	for _, clone := range clones {
		if !strings.Contains(children, rbdName(clone)) {
			t.Errorf("rbd children does not list %s:\n%s", clone, children)
		}
	}
	if info := string(rbdtest.Tool(t, "rbd", "info", rbdName(golden)+"@v1")); !strings.Contains(info, "protected: True") {
		t.Errorf("the golden snapshot is not protected:\n%s", info)
	}
	snap := rbdExport(t, rbdName(golden)+"@v1")
	checkFATExport(t, snap, testsupport.Sfdisk(t, snap)[0], tree)
}

// NBD multi-conn across servers: three vdisk servers export one read-only
// snapshot; each offers multi-conn, and a libnbd client spreading its
// reads over the three, round robin, reads the bytes that rbd export
// gives. The snapshot's export is named IMAGE.SNAP.
func TestRBDMultiConnAcrossServers(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdcopy")
	py := testsupport.NeedNbdsh(t)
	c := newRBDCLI(t)
	image, spec := c.create(t, "--size", "16MiB", "--table", "none")
	src := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(src, testsupport.Random(16<<20, 5, true), 0o644); err != nil {
		t.Fatal(err)
	}
	writer := c.serve(t, spec)
	testsupport.Must(t, "nbdcopy", src, "nbd://"+writer.Addr+"/"+image)
	stop(t, writer)
	rbdtest.Tool(t, "rbd", "snap", "create", rbdName(image)+"@v1")
	want := sha256Hex(t, rbdExport(t, rbdName(image)+"@v1"))

	var uris []string
	for range 3 {
		srv := c.serve(t, spec+"@v1")
		uri := "nbd://" + srv.Addr + "/" + image + ".v1"
		testsupport.WaitNBD(t, srv, uri)
		for _, e := range testworld.Nbdinfo(t, uri) {
			if !e.ReadOnly || !e.CanMultiConn || e.Size != 16<<20 {
				t.Errorf("%s: read-only=%v multi-conn=%v size=%d; want a read-only 16 MiB export with multi-conn", uri, e.ReadOnly, e.CanMultiConn, e.Size)
			}
		}
		uris = append(uris, uri)
	}
	out := filepath.Join(t.TempDir(), "read.bin")
	script := fmt.Sprintf(`
import nbd, hashlib, json
uris = %s
hs = []
for u in uris:
    h = nbd.NBD()
    h.connect_uri(u)
    hs.append(h)
size = hs[0].get_size()
assert all(h.get_size() == size and h.can_multi_conn() and h.is_read_only() for h in hs)
step = 256 * 1024
counts = [0] * len(hs)
with open(%q, "wb") as f:
    for i, off in enumerate(range(0, size, step)):
        k = i %% len(hs)
        f.write(hs[k].pread(min(step, size - off), off))
        counts[k] += 1
for h in hs:
    h.shutdown()
print(json.dumps({"counts": counts}))
`, pyList(uris), out)
	r := testsupport.Run(t, py, "-c", script)
	if r.Code != 0 {
		t.Fatalf("the libnbd client: exit status %d\n%s", r.Code, r.Output())
	}
	if !strings.Contains(r.Stdout, `"counts": [22, 21, 21]`) {
		t.Errorf("the client's reads per server: %s, want 22, 21, 21", r.Stdout)
	}
	if got := sha256Hex(t, out); got != want {
		t.Errorf("what the client read across three servers: sha256 %s; rbd export of the snapshot: %s", got, want)
	}
}

// pyList is a Python list of strings.
func pyList(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
