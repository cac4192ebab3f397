package fat_test

// A bounded concurrency stress test of the FAT file system driver through
// the Volume façade: goroutines work at once on one mounted volume, each
// in a directory of its own and in one shared directory (where directory
// index updates race), each checking every answer against its own model;
// then the volume is dismounted and fsck.fat and mtools judge the image.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/partition"
)

const (
	fcWorkers  = 8
	fcOps      = 400
	fcMaxFile  = 300 << 10
	fcBudget   = 5 << 19 // model bytes per worker (the hot file aside) above which it removes rather than writes
	fcWatchdog = 60 * time.Second
	fcShared   = "shared"
	fcHotMax   = 3 << 20        // the open files reach this far: together they fill the data cache
	fcBig      = 17<<20 + 12345 // one file larger than the data cache (16 MiB), written and read in one go
)

// TestFATConcurrencyStress runs fcWorkers goroutines of fcOps random
// operations each on a FAT16 and a FAT32 superfloppy, with a flusher
// writing the whole volume now and then, then compares every file with
// its model through the volume, and after the dismount with fsck.fat -n
// and mtools (every name, every byte).
func TestFATConcurrencyStress(t *testing.T) {
	for _, c := range []struct {
		typ  string
		size int64
	}{{"fat16", 128 << 20}, {"fat32", 256 << 20}} {
		t.Run(strings.ToUpper(c.typ), func(t *testing.T) {
			t.Parallel()
			fcRun(t, c.typ, c.size)
		})
	}
}

func fcRun(t *testing.T, typ string, size int64) {
	testsupport.NeedTool(t, "fsck.fat")
	testsupport.NeedTool(t, "mdir")
	testsupport.NeedTool(t, "mcopy")
	img := filepath.Join(t.TempDir(), "stress-"+typ+".img")
	if _, err := create.Image(img, create.Options{Size: size, Table: partition.None, FormatNone: typ, Label: "STRESS"}); err != nil {
		t.Fatal(err)
	}
	sys := vdisk.New(vdisk.Options{Requestor: "stress"})
	closed := false
	defer func() {
		if !closed {
			sys.Close()
		}
	}()
	if _, err := sys.AddImage(img, false); err != nil {
		t.Fatal(err)
	}
	v, err := testworld.VolumeNamed(sys, vdisk.ImageName(img), "stress")
	if err != nil {
		t.Fatal(err)
	}
	info, err := v.Info()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"fat16": "FAT", "fat32": "FAT32"}[typ]; info.FileSystem != want {
		t.Fatalf("file system %q, want %q", info.FileSystem, want)
	}
	if err := v.Mkdir(fcShared); err != nil {
		t.Fatal(err)
	}

	// The flusher and the workers' syncs flush the whole volume, which
	// stops the lazy writer's timer: they keep quiet for longer than its
	// delay now and then, so that the lazy writer runs too.
	syncs := &fcSyncs{}
	// Each worker's operations are the same in every run (its own
	// generator); VDISK_FAT_STRESS_SEED=N runs other ones.
	seed := uint64(len(typ)) * uint64(size>>20)
	if e := os.Getenv("VDISK_FAT_STRESS_SEED"); e != "" {
		if _, err := fmt.Sscan(e, &seed); err != nil {
			t.Fatalf("VDISK_FAT_STRESS_SEED=%q: %v", e, err)
		}
	}
	workers := make([]*fcWorker, fcWorkers)
	errs := make([]error, fcWorkers)
	var wg sync.WaitGroup
	for g := range workers {
		w := &fcWorker{g: g, v: v, r: rand.New(rand.NewPCG(seed, uint64(g))), cluster: int(info.ClusterSize),
			files: map[string][]byte{}, dirs: map[string]bool{}, syncs: syncs}
		workers[g] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = w.run()
		}()
	}
	// The flusher: FLUSH_BUFFERS on any handle writes the whole volume.
	stop := make(chan struct{})
	flushed := make(chan error, 1)
	go func() {
		flushed <- fcFlusher(v, stop, syncs)
	}()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(fcWatchdog):
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		closed = true // a System stuck in a deadlock would not close either
		t.Fatalf("the workers did not finish within %v; goroutines:\n%s", fcWatchdog, buf)
	}
	close(stop)
	if err := <-flushed; err != nil {
		t.Errorf("flusher: %v", err)
	}
	for _, err := range errs {
		if err != nil {
			t.Errorf("seed %d: %v", seed, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every file of every model, read through the volume; the whole tree
	// holds exactly the models' files and directories.
	want := map[string][]byte{} // path → content
	wantDir := map[string]bool{fcShared: true}
	for _, w := range workers {
		if w.hot != nil {
			if err := w.hot.Close(); err != nil {
				t.Fatalf("close %s: %v", w.hotName, err)
			}
		}
		for p, data := range w.files {
			want[p] = data
		}
		for d := range w.dirs {
			wantDir[d] = true
		}
	}
	for p, data := range want {
		got, err := v.ReadFile(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadFile %s: %d bytes (%v), want %d; first difference at %d", p, len(got), err, len(data), fcDiff(got, data))
		}
	}
	gotFiles, gotDirs := map[string]int64{}, map[string]bool{}
	err = fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if d.IsDir() {
			gotDirs[p] = true
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		gotFiles[p] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fcCompareTree(t, "the volume", gotFiles, gotDirs, want, wantDir)

	closed = true
	if err := sys.Close(); err != nil {
		t.Fatal(err)
	}

	// The outside oracles.
	r := testsupport.Run(t, "fsck.fat", "-n", img)
	if r.Code != 0 || strings.Count(strings.TrimSpace(r.Stdout), "\n") != 1 || r.Stderr != "" {
		t.Fatalf("fsck.fat -n: exit status %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	gotFiles, gotDirs = fcMdir(t, img)
	fcCompareTree(t, "mdir", gotFiles, gotDirs, want, wantDir)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	fcMtools(t, "mcopy", "-s", "-n", "-i", img, "::/", out+"/")
	n := 0
	for p, data := range want {
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("mcopy %s: %d bytes (%v), want %d; first difference at %d", p, len(got), err, len(data), fcDiff(got, data))
		}
		n++
	}
	if n < 50 {
		t.Errorf("only %d files at the end: the test should leave at least 50 for the oracles", n)
	}
	total := 0
	for _, d := range want {
		total += len(d)
	}
	t.Logf("%s: %d bytes in %d files, %d directories checked by fsck.fat and mtools", typ, total, len(want), len(wantDir))
}

// fcSyncs says when the whole volume may be flushed: the flusher opens
// and closes the gate, and no flush is sent while a worker pauses.
type fcSyncs struct {
	gate    atomic.Bool
	pausing atomic.Int32
}

func (s *fcSyncs) ok() bool { return s.gate.Load() && s.pausing.Load() == 0 }

// fcPause is how long half the workers pause halfway, with no flush meanwhile:
// longer than the lazy writer's delay, so that it writes (while the other
// workers go on, if they are not done), however fast the run.
const fcPause = 1200 * time.Millisecond

// fcFlusher flushes the whole volume until stop: every few milliseconds
// for a while, with the gate open for the workers' syncs, then nothing for
// longer than the lazy writer's delay, with the gate closed.
func fcFlusher(v *vdisk.Volume, stop chan struct{}, syncs *fcSyncs) error {
	f, err := v.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	for i := 0; ; i++ {
		wait := 20 * time.Millisecond
		syncs.gate.Store(i%20 < 10)
		if i%20 == 19 {
			wait = 1300 * time.Millisecond
		}
		select {
		case <-stop:
			return nil
		case <-time.After(wait):
		}
		if !syncs.ok() {
			continue
		}
		if err := f.(*vdisk.File).Sync(); err != nil {
			return err
		}
		if _, err := v.Info(); err != nil {
			return err
		}
	}
}

func fcDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func fcCompareTree(t *testing.T, what string, gotFiles map[string]int64, gotDirs map[string]bool, want map[string][]byte, wantDir map[string]bool) {
	t.Helper()
	var bad []string
	for p, data := range want {
		if n, ok := gotFiles[p]; !ok {
			bad = append(bad, "missing file "+p)
		} else if n >= 0 && n != int64(len(data)) {
			bad = append(bad, fmt.Sprintf("%s: size %d, want %d", p, n, len(data)))
		}
	}
	for p := range gotFiles {
		if _, ok := want[p]; !ok {
			bad = append(bad, "unexpected file "+p)
		}
	}
	for d := range wantDir {
		if !gotDirs[d] {
			bad = append(bad, "missing directory "+d)
		}
	}
	for d := range gotDirs {
		if !wantDir[d] {
			bad = append(bad, "unexpected directory "+d)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Fatalf("%s: %d differences from the models:\n%s", what, len(bad), strings.Join(bad, "\n"))
	}
}

// fcMtools runs an mtools command that must succeed.
func fcMtools(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s%s", name, args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// fcMdir lists the whole image with mdir -/ -b (one full path a line,
// directories with a trailing slash): its files (size -1: unknown) and
// directories.
func fcMdir(t *testing.T, img string) (map[string]int64, map[string]bool) {
	t.Helper()
	files, dirs := map[string]int64{}, map[string]bool{}
	for _, line := range strings.Split(fcMtools(t, "mdir", "-/", "-b", "-i", img, "::/"), "\n") {
		p, ok := strings.CutPrefix(line, "::/")
		if !ok || p == "" {
			continue
		}
		if d, ok := strings.CutSuffix(p, "/"); ok {
			dirs[d] = true
		} else {
			files[p] = -1
		}
	}
	return files, dirs
}

// fcWorker is one goroutine of the test with its model: the files it made
// (path → content) and its directories.
type fcWorker struct {
	g       int
	v       *vdisk.Volume
	r       *rand.Rand
	cluster int
	files   map[string][]byte
	dirs    map[string]bool
	hot     *vdisk.File // a file kept open for the whole run
	// syncs says whether syncs may be sent now: the worker's choices
	// do not depend on it, only whether a sync it chose is sent.
	syncs   *fcSyncs
	hotName string
	next    int
	log     []string
}

func (w *fcWorker) home() string { return fmt.Sprintf("g%d", w.g) }

func (w *fcWorker) logf(format string, args ...any) {
	if len(w.log) == 30 {
		w.log = w.log[1:]
	}
	w.log = append(w.log, fmt.Sprintf(format, args...))
}

func (w *fcWorker) errorf(format string, args ...any) error {
	return fmt.Errorf("worker %d: %s\nits last operations:\n\t%s", w.g, fmt.Sprintf(format, args...), strings.Join(w.log, "\n\t"))
}

// newName returns a name of the worker's own, in one of three kinds: a
// long name, an 8.3 name, a Unicode long name.
func (w *fcWorker) newName(dir bool) string {
	w.next++
	if dir {
		return fmt.Sprintf("g%d dir %d", w.g, w.next)
	}
	switch w.r.IntN(4) {
	case 0:
		return fmt.Sprintf("G%dF%04d.DAT", w.g, w.next)
	case 1:
		return fmt.Sprintf("g%d ünïcödé %d ファイル.txt", w.g, w.next)
	}
	return fmt.Sprintf("g%d file %d with a long name.bin", w.g, w.next)
}

// own reports whether a name in the shared directory is the worker's.
func (w *fcWorker) own(name string) bool {
	l := strings.ToLower(name)
	return strings.HasPrefix(l, fmt.Sprintf("g%d ", w.g)) || strings.HasPrefix(l, fmt.Sprintf("g%df", w.g))
}

func (w *fcWorker) data(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		x := w.r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

// size returns a file size: random up to fcMaxFile, or (one time in four)
// a whole number of clusters, or one byte off.
func (w *fcWorker) size() int {
	if w.r.IntN(4) == 0 {
		n := w.cluster * w.r.IntN(fcMaxFile/w.cluster+1)
		return max(0, min(fcMaxFile, n+w.r.IntN(3)-1))
	}
	return w.r.IntN(fcMaxFile + 1)
}

func (w *fcWorker) modelBytes() int {
	n := 0
	for p, b := range w.files {
		if p != w.hotName {
			n += len(b)
		}
	}
	return n
}

// pickFile returns one of the worker's files other than the hot one, "" if none.
func (w *fcWorker) pickFile() string {
	var names []string
	for p := range w.files {
		if p != w.hotName {
			names = append(names, p)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[w.r.IntN(len(names))]
}

// pickDir returns one of the directories where the worker makes files.
func (w *fcWorker) pickDir(withShared bool) string {
	var names []string
	for d := range w.dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	if withShared {
		names = append(names, fcShared, fcShared) // the shared directory, often
	}
	return names[w.r.IntN(len(names))]
}

func (w *fcWorker) run() error {
	if err := w.v.Mkdir(w.home()); err != nil {
		return w.errorf("mkdir %s: %v", w.home(), err)
	}
	w.dirs[w.home()] = true
	w.hotName = w.home() + "/hot file.bin"
	f, err := w.v.OpenFile(w.hotName, os.O_RDWR|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return w.errorf("create %s: %v", w.hotName, err)
	}
	w.hot = f
	w.files[w.hotName] = nil
	for i := range fcOps {
		if i == fcOps/3 && w.g == fcWorkers-1 {
			if err := w.opBig(); err != nil {
				return w.errorf("operation %d: %v", i, err)
			}
		}
		if i == fcOps/2 && w.g%2 == 0 {
			w.logf("pause")
			w.syncs.pausing.Add(1)
			time.Sleep(fcPause)
			w.syncs.pausing.Add(-1)
		}
		var err error
		switch op := w.r.IntN(100); {
		case op < 20:
			err = w.opWriteFile()
		case op < 35:
			err = w.opWriteAt()
		case op < 45:
			err = w.opHot()
		case op < 55:
			err = w.opReadAt()
		case op < 62:
			err = w.opTruncate()
		case op < 70:
			err = w.opRename()
		case op < 77:
			err = w.opRemove()
		case op < 81:
			err = w.opMkdir()
		case op < 83:
			err = w.opDirRename()
		case op < 91:
			err = w.opReadDir()
		case op < 96:
			err = w.opStat()
		default:
			err = w.opChtimes()
		}
		if err != nil {
			return w.errorf("operation %d: %v", i, err)
		}
	}
	return nil
}

// opWriteFile creates a file, or overwrites one, with WriteFile.
func (w *fcWorker) opWriteFile() error {
	p := w.pickFile()
	if p == "" || w.r.IntN(2) == 0 {
		if w.modelBytes() > fcBudget {
			return w.opRemove()
		}
		p = path.Join(w.pickDir(true), w.newName(false))
	}
	data := w.data(w.size())
	w.logf("WriteFile %s %d", p, len(data))
	if err := w.v.WriteFile(p, data); err != nil {
		return err
	}
	w.files[p] = data
	if w.r.IntN(3) == 0 {
		return w.check(p)
	}
	return nil
}

// check reads a whole file back and compares it with the model.
func (w *fcWorker) check(p string) error {
	got, err := w.v.ReadFile(p)
	if err != nil {
		return err
	}
	if want := w.files[p]; !bytes.Equal(got, want) {
		return fmt.Errorf("ReadFile %s: %d bytes, want %d; first difference at %d", p, len(got), len(want), fcDiff(got, want))
	}
	return nil
}

// writeAt writes at a random offset through f (a gap past the end, now
// and then, which the file system fills with zeros), reads a random range
// back, and keeps the model.
func (w *fcWorker) writeAt(f *vdisk.File, p string, limit int) error {
	data := w.files[p]
	n := 1 + w.r.IntN(64<<10)
	if w.r.IntN(4) == 0 {
		n = 1 + w.r.IntN(512)
	}
	off := w.r.IntN(len(data) + 1)
	switch w.r.IntN(5) {
	case 0:
		off = len(data) + w.r.IntN(3*w.cluster)
	case 1:
		off = w.r.IntN(limit - n)
	}
	if off+n > limit {
		off = max(0, limit-n)
	}
	buf := w.data(n)
	w.logf("WriteAt %s %d+%d (size %d)", p, off, n, len(data))
	if k, err := f.WriteAt(buf, int64(off)); err != nil || k != n {
		return fmt.Errorf("WriteAt %s %d+%d: %d, %v", p, off, n, k, err)
	}
	if end := off + n; end > len(data) {
		data = append(data, make([]byte, end-len(data))...)
	}
	copy(data[off:], buf)
	w.files[p] = data
	return w.readAt(f, p)
}

// readAt reads a random range of p through f (now and then past the end)
// and compares it with the model.
func (w *fcWorker) readAt(f *vdisk.File, p string) error {
	data := w.files[p]
	off := w.r.IntN(len(data) + 1)
	n := 1 + w.r.IntN(96<<10)
	if w.r.IntN(6) == 0 {
		off = len(data) + w.r.IntN(2*w.cluster)
	}
	buf := make([]byte, n)
	k, err := f.ReadAt(buf, int64(off))
	want := 0
	if off < len(data) {
		want = min(n, len(data)-off)
	}
	switch {
	case k != want:
		return fmt.Errorf("ReadAt %s %d+%d (size %d): %d bytes (%v), want %d", p, off, n, len(data), k, err, want)
	case want < n && err != io.EOF:
		return fmt.Errorf("ReadAt %s %d+%d (size %d): %v, want io.EOF", p, off, n, len(data), err)
	case want == n && err != nil:
		return fmt.Errorf("ReadAt %s %d+%d (size %d): %v", p, off, n, len(data), err)
	case k > 0 && !bytes.Equal(buf[:k], data[off:off+k]):
		return fmt.Errorf("ReadAt %s %d+%d (size %d): differs from the model at %d", p, off, n, len(data), off+fcDiff(buf[:k], data[off:off+k]))
	}
	return nil
}

// opWriteAt writes (and reads) at random offsets through a new handle,
// syncing it now and then.
func (w *fcWorker) opWriteAt() error {
	p := w.pickFile()
	if p == "" {
		return w.opWriteFile()
	}
	f, err := w.v.OpenFile(p, os.O_RDWR)
	if err != nil {
		return err
	}
	for range 1 + w.r.IntN(4) {
		if err = w.writeAt(f, p, fcMaxFile+64<<10); err != nil {
			break
		}
	}
	if err == nil && w.r.IntN(6) == 0 && w.syncs.ok() {
		w.logf("Sync %s", p)
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// opHot writes, reads, truncates or syncs the file kept open, and reads it
// whole through a second handle now and then.
func (w *fcWorker) opHot() error {
	p := w.hotName
	switch w.r.IntN(8) {
	case 0:
		old := len(w.files[p])
		size := old - w.r.IntN(old/8+1) + w.r.IntN(2*w.cluster+1)
		w.logf("Truncate hot %d (size %d)", size, len(w.files[p]))
		if err := w.hot.Truncate(int64(size)); err != nil {
			return err
		}
		w.files[p] = fcResize(w.files[p], size)
	case 1:
		if !w.syncs.ok() {
			break
		}
		w.logf("Sync hot")
		if err := w.hot.Sync(); err != nil {
			return err
		}
	case 2:
		w.logf("ReadFile hot")
		return w.check(p)
	case 3:
		fi, err := w.hot.Stat()
		if err != nil {
			return err
		}
		if fi.Size() != int64(len(w.files[p])) {
			return fmt.Errorf("Stat of the open %s: size %d, want %d", p, fi.Size(), len(w.files[p]))
		}
	default:
		return w.writeAt(w.hot, p, fcHotMax)
	}
	return w.readAt(w.hot, p)
}

func fcResize(b []byte, n int) []byte {
	if n <= len(b) {
		return b[:n:n]
	}
	return append(b, make([]byte, n-len(b))...)
}

// opReadAt reads random ranges through a read-only handle.
func (w *fcWorker) opReadAt() error {
	p := w.pickFile()
	if p == "" {
		return nil
	}
	w.logf("ReadAt %s", p)
	ff, err := w.v.Open(p)
	if err != nil {
		return err
	}
	f := ff.(*vdisk.File)
	for range 1 + w.r.IntN(4) {
		if err = w.readAt(f, p); err != nil {
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// opTruncate grows or shrinks a file, then checks its size and its bytes
// around the new end.
func (w *fcWorker) opTruncate() error {
	p := w.pickFile()
	if p == "" {
		return nil
	}
	old := len(w.files[p])
	var size int
	switch w.r.IntN(4) {
	case 0:
		size = 0
	case 1:
		size = w.r.IntN(old + 1)
	case 2:
		size = (old/w.cluster + w.r.IntN(3)) * w.cluster
	default:
		size = old + w.r.IntN(100<<10)
	}
	size = min(size, fcMaxFile)
	w.logf("Truncate %s %d (size %d)", p, size, old)
	f, err := w.v.OpenFile(p, os.O_RDWR)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(size))
	if err == nil {
		w.files[p] = fcResize(w.files[p], size)
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil && fi.Size() != int64(size) {
			err = fmt.Errorf("Stat %s after Truncate: size %d, want %d", p, fi.Size(), size)
		}
	}
	if err == nil {
		err = w.readAt(f, p)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// opRename moves a file within its directory or to another one, over an
// existing file of the worker's now and then (which must fail without
// replace).
func (w *fcWorker) opRename() error {
	p := w.pickFile()
	if p == "" {
		return nil
	}
	to := path.Join(path.Dir(p), w.newName(false))
	if w.r.IntN(2) == 0 {
		to = path.Join(w.pickDir(true), w.newName(false))
	}
	replace := false
	if q := w.pickFile(); q != "" && q != p && w.r.IntN(4) == 0 {
		to, replace = q, w.r.IntN(3) != 0
	}
	w.logf("Rename %s → %s (replace %v)", p, to, replace)
	err := w.v.Rename(p, to, replace)
	if _, exists := w.files[to]; exists && !replace {
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("Rename %s over %s without replace: %v, want it to exist", p, to, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	w.files[to] = w.files[p]
	delete(w.files, p)
	if _, err := w.v.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("Stat %s after its rename: %v, want it not to exist", p, err)
	}
	return w.check(to)
}

// opRemove removes a file, an empty directory, or (failing) a name that
// does not exist or a directory that is not empty.
func (w *fcWorker) opRemove() error {
	switch w.r.IntN(8) {
	case 0:
		p := path.Join(w.pickDir(true), w.newName(false))
		w.logf("Remove missing %s", p)
		if err := w.v.Remove(p); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("Remove of the missing %s: %v", p, err)
		}
		return nil
	case 1:
		d := w.pickDir(false)
		if d == w.home() {
			return nil
		}
		empty := true
		for p := range w.files {
			empty = empty && !strings.HasPrefix(p, d+"/")
		}
		for x := range w.dirs {
			empty = empty && !strings.HasPrefix(x, d+"/")
		}
		w.logf("Remove directory %s (empty %v)", d, empty)
		err := w.v.Remove(d)
		if !empty {
			if err == nil {
				return fmt.Errorf("Remove of the non-empty directory %s succeeded", d)
			}
			return nil
		}
		if err != nil {
			return err
		}
		delete(w.dirs, d)
		return nil
	}
	p := w.pickFile()
	if p == "" {
		return nil
	}
	w.logf("Remove %s", p)
	if err := w.v.Remove(p); err != nil {
		return err
	}
	delete(w.files, p)
	if _, err := w.v.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("Stat %s after its removal: %v, want it not to exist", p, err)
	}
	return nil
}

// opMkdir makes a directory in one of the worker's, or tries to make one
// that exists.
func (w *fcWorker) opMkdir() error {
	if w.r.IntN(5) == 0 {
		d := w.pickDir(false)
		w.logf("Mkdir existing %s", d)
		if err := w.v.Mkdir(d); !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("Mkdir of the existing %s: %v", d, err)
		}
		return nil
	}
	d := path.Join(w.pickDir(false), w.newName(true))
	w.logf("Mkdir %s", d)
	if err := w.v.Mkdir(d); err != nil {
		return err
	}
	w.dirs[d] = true
	return nil
}

// opDirRename renames one of the worker's directories (not its home) with
// what it holds, within its parent or to another directory not under it.
func (w *fcWorker) opDirRename() error {
	d := w.pickDir(false)
	if d == w.home() {
		return nil
	}
	parent := w.pickDir(false)
	if parent == d || strings.HasPrefix(parent, d+"/") {
		parent = path.Dir(d)
	}
	to := path.Join(parent, w.newName(true))
	w.logf("Rename directory %s → %s", d, to)
	if err := w.v.Rename(d, to, false); err != nil {
		return err
	}
	move := func(p string) (string, bool) {
		if p == d {
			return to, true
		}
		if rest, ok := strings.CutPrefix(p, d+"/"); ok {
			return to + "/" + rest, true
		}
		return "", false
	}
	files, dirs := map[string][]byte{}, map[string]bool{}
	for p, data := range w.files {
		if q, ok := move(p); ok {
			p = q
		}
		files[p] = data
	}
	for x := range w.dirs {
		if q, ok := move(x); ok {
			x = q
		}
		dirs[x] = true
	}
	w.files, w.dirs = files, dirs
	return w.readDir(to)
}

// opReadDir lists one of the worker's directories, or its files in the
// shared one, and compares with the model.
func (w *fcWorker) opReadDir() error {
	return w.readDir(w.pickDir(true))
}

func (w *fcWorker) readDir(d string) error {
	w.logf("ReadDir %s", d)
	entries, err := w.v.ReadDir(d)
	if err != nil {
		return err
	}
	var got, want []string
	for _, e := range entries {
		if d == fcShared && !w.own(e.Name()) {
			continue
		}
		size := int64(-1)
		if !e.IsDir() {
			info, err := e.Info()
			if err != nil {
				return err
			}
			size = info.Size()
		}
		got = append(got, fmt.Sprintf("%s %d", e.Name(), size))
	}
	for p, data := range w.files {
		if path.Dir(p) == d {
			want = append(want, fmt.Sprintf("%s %d", path.Base(p), len(data)))
		}
	}
	for x := range w.dirs {
		if path.Dir(x) == d {
			want = append(want, fmt.Sprintf("%s %d", path.Base(x), -1))
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		return fmt.Errorf("ReadDir %s:\n\t%s\nwant\n\t%s", d, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	return nil
}

// opStat checks the size of a file, or that a name does not exist.
func (w *fcWorker) opStat() error {
	p := w.pickFile()
	if p == "" || w.r.IntN(5) == 0 {
		p = path.Join(w.pickDir(true), w.newName(false))
		w.logf("Stat missing %s", p)
		if _, err := w.v.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("Stat of the missing %s: %v", p, err)
		}
		return nil
	}
	w.logf("Stat %s", p)
	fi, err := w.v.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Size() != int64(len(w.files[p])) || fi.Name() != path.Base(p) {
		return fmt.Errorf("Stat %s: %s %d dir %v, want size %d", p, fi.Name(), fi.Size(), fi.IsDir(), len(w.files[p]))
	}
	return nil
}

// opChtimes sets a file's modification time, by name or through the open
// hot file, and reads it back.
func (w *fcWorker) opChtimes() error {
	p := w.pickFile()
	byHandle := p == "" || w.r.IntN(3) == 0
	if byHandle {
		p = w.hotName
	}
	// Noon-ish and even seconds: FAT keeps 2-second local times, and no
	// daylight saving change comes near.
	mtime := time.Date(1990+w.r.IntN(50), time.Month(1+w.r.IntN(12)), 1+w.r.IntN(28), 11+w.r.IntN(3), w.r.IntN(60), 2*w.r.IntN(30), 0, time.Local)
	w.logf("Chtimes %s %v (by handle %v)", p, mtime, byHandle)
	var err error
	if byHandle {
		err = w.hot.Chtimes(time.Time{}, mtime)
	} else {
		err = w.v.Chtimes(p, time.Time{}, mtime)
	}
	if err != nil {
		return err
	}
	fi, err := w.v.Stat(p)
	if err != nil {
		return err
	}
	if !fi.ModTime().Equal(mtime) || fi.Size() != int64(len(w.files[p])) {
		return fmt.Errorf("Stat %s after Chtimes: %v size %d, want %v size %d", p, fi.ModTime(), fi.Size(), mtime, len(w.files[p]))
	}
	return nil
}

// opBig writes a file larger than the data cache in one call, which has
// the cache write back dirty pages (its own and the other workers') to
// make room, reads it back through a second handle, and removes it now
// and then.
func (w *fcWorker) opBig() error {
	p := w.home() + "/big file.bin"
	data := w.data(fcBig)
	w.logf("WriteFile %s %d", p, len(data))
	if err := w.v.WriteFile(p, data); err != nil {
		return err
	}
	w.files[p] = data
	if err := w.check(p); err != nil {
		return err
	}
	if w.r.IntN(2) == 0 {
		w.logf("Remove %s", p)
		if err := w.v.Remove(p); err != nil {
			return err
		}
		delete(w.files, p)
	}
	return nil
}
