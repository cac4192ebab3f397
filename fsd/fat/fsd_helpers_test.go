package fat

// Test fixture of the FSD: an I/O manager with a disk over an image file,
// a storage volume named \DosDevices\v, the mount manager, the raw file
// system and this driver; helpers that send IRPs the way an application's
// requests arrive. Names start with "fx" (the on-disk layer's helpers use
// "od").

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/volume"
)

// fxLayout is an image format the FSD tests run on.
type fxLayout struct {
	name       string
	kib        int
	mkfs       []string
	sectorSize uint32 // the disk's sector size
	typ        ondisk.FATType
}

// The four layouts of the brief: FAT12 floppy, FAT16, FAT32, FAT32 with
// 4 KiB sectors (on a disk with 4 KiB sectors).
var fxLayouts = []fxLayout{
	{"fat12", 1440, nil, 512, ondisk.FAT12},
	{"fat16", 16384, []string{"-F", "16", "-s", "2"}, 512, ondisk.FAT16},
	{"fat32", 40000, []string{"-F", "32", "-s", "1"}, 512, ondisk.FAT32},
	{"fat32-4k", 280000, []string{"-F", "32", "-S", "4096", "-s", "1"}, 4096, ondisk.FAT32},
}

// fxFsck runs fsck.fat -n and fails the test if it finds anything.
func fxFsck(t testing.TB, img string) {
	t.Helper()
	fattest.Need(t, "fsck.fat")
	out, code := fattest.Run(t, "fsck.fat", "-n", "-V", img)
	clean := code == 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.HasPrefix(l, "fsck.fat "), strings.HasPrefix(l, "Starting "),
			strings.HasPrefix(l, img+":"):
		default:
			clean = false
		}
	}
	if !clean {
		t.Fatalf("fsck.fat -n %s exited %d:\n%s", img, code, out)
	}
}

// fxFixedNow is the clock of the tests.
var fxFixedNow = time.Date(2024, 5, 17, 12, 34, 56, 0, time.UTC)

// fxVol is a mounted test volume.
type fxVol struct {
	t     testing.TB
	img   string
	io    *iomgr.Manager
	dd    *disk.Driver
	mm    *mount.Manager
	fs    *FileSystem
	vol   *iomgr.Device // the storage volume device
	store disk.Store

	mu   sync.Mutex
	logs []string
}

type fxOpt struct {
	readOnly bool
	workers  int
}

// fxOpen builds the stack over an image file.
func fxOpen(t testing.TB, img string, sectorSize uint32, o fxOpt) *fxVol {
	t.Helper()
	store, err := disk.OpenFile(img, o.readOnly)
	if err != nil {
		t.Fatal(err)
	}
	return fxOpenStore(t, store, sectorSize, o, img)
}

func fxOpenStore(t testing.TB, store disk.Store, sectorSize uint32, o fxOpt, img string) *fxVol {
	t.Helper()
	io := iomgr.NewManager()
	dd := disk.NewDriver(io, disk.Options{Workers: o.workers})
	d, err := dd.AddDisk(store, sectorSize, o.readOnly)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := volume.NewDriver(io).AddVolume(d, store.Size()/int64(sectorSize)*int64(sectorSize), `\DosDevices\v`)
	if err != nil {
		t.Fatal(err)
	}
	mm := mount.New(io)
	if _, err := mount.NewRawFileSystem(mm); err != nil {
		t.Fatal(err)
	}
	x := &fxVol{t: t, img: img, io: io, dd: dd, mm: mm, vol: vol, store: store}
	now := fxFixedNow
	var clock sync.Mutex
	x.fs, err = Register(mm, Options{Location: time.UTC, Now: func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		now = now.Add(2 * time.Second)
		return now
	}, Logf: func(format string, args ...any) {
		x.mu.Lock()
		x.logs = append(x.logs, fmt.Sprintf(format, args...))
		x.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A volume left mounted is dismounted first, so that its lazy
		// writer has nothing left to do once the disk is gone.
		if vp := vol.VPB(); vp != nil && vp.Mounted() {
			_ = mm.Dismount(vol, mount.DismountOptions{Force: true, Requestor: "test"})
		}
		_ = dd.Close()
	})
	return x
}

// fxNew makes an image of a layout and mounts it.
func fxNew(t testing.TB, l fxLayout, extra ...string) *fxVol {
	t.Helper()
	img := fattest.Mkfs(t, l.kib, append(append([]string(nil), l.mkfs...), extra...)...)
	return fxOpen(t, img, l.sectorSize, fxOpt{})
}

// close dismounts the volume cleanly and closes the image.
func (x *fxVol) close() {
	x.t.Helper()
	if x.vol.VPB().Mounted() {
		if err := x.mm.Dismount(x.vol, mount.DismountOptions{Requestor: "test"}); err != nil {
			x.t.Fatalf("dismount: %v", err)
		}
	}
	if err := x.dd.Close(); err != nil {
		x.t.Fatal(err)
	}
}

// volume returns the mounted FAT volume (mounting it if needed).
func (x *fxVol) volume() *vcb {
	x.t.Helper()
	v, err := x.mm.Mount(x.vol, mount.MountOptions{})
	if err != nil {
		x.t.Fatal(err)
	}
	dev, _ := v.Device()
	fv, ok := dev.Extension.(*vcb)
	if !ok {
		x.t.Fatalf("the volume is mounted by %s", dev.Driver.Name)
	}
	return fv
}

// Access shorthands.
const (
	fxRW  = iomgr.GenericRead | iomgr.GenericWrite
	fxAll = iomgr.GenericRead | iomgr.GenericWrite | iomgr.Delete
	fxShr = iomgr.ShareRead | iomgr.ShareWrite | iomgr.ShareDelete
)

// open opens path (`\dir\file`) on the volume.
func (x *fxVol) open(path string, access iomgr.AccessMask, disp iomgr.CreateDisposition, opts iomgr.CreateOptions) (*iomgr.FileObject, uint64, error) {
	return x.mm.Open(`\DosDevices\v`+path, mount.OpenOptions{DesiredAccess: access, ShareAccess: fxShr,
		Disposition: disp, Options: opts, Requestor: "test"})
}

func (x *fxVol) mustOpen(path string, access iomgr.AccessMask, disp iomgr.CreateDisposition, opts iomgr.CreateOptions) *iomgr.FileObject {
	x.t.Helper()
	fo, _, err := x.open(path, access, disp, opts)
	if err != nil {
		x.t.Fatalf("open %s: %v", path, err)
	}
	return fo
}

// closeFO closes a handle.
func fxClose(fo *iomgr.FileObject) { fo.CloseHandle("test") }

// fxRW sends a READ or WRITE of buf at off.
func fxIO(fo *iomgr.FileObject, major iomgr.MajorFunction, buf []byte, off int64) (int, iomgr.Status) {
	dev := iomgr.RelatedDevice(fo)
	irp := iomgr.BuildSynchronousFSDRequest(major, dev, buf, off)
	irp.FileObject = fo
	irp.Requestor = "test"
	irp.NextStackLocation().FileObject = fo
	ios := iomgr.CallDriverAndWait(dev, irp)
	iomgr.FreeIRP(irp)
	return int(ios.Information), ios.Status
}

func fxRead(fo *iomgr.FileObject, off int64, n int) ([]byte, iomgr.Status) {
	buf := make([]byte, n)
	got, st := fxIO(fo, iomgr.MajorRead, buf, off)
	return buf[:got], st
}

func fxWrite(fo *iomgr.FileObject, off int64, data []byte) iomgr.Status {
	n, st := fxIO(fo, iomgr.MajorWrite, data, off)
	if st.IsSuccess() && n != len(data) {
		return iomgr.StatusUnsuccessful
	}
	return st
}

// fxReadAll reads a whole file: as many bytes as its size, then checks
// that the next read reports the end of the file.
func fxReadAll(fo *iomgr.FileObject) ([]byte, iomgr.Status) {
	var std iomgr.FileStandardInformation
	if st := fxQuery(fo, iomgr.FileStandardInformationClass, &std); !st.IsSuccess() {
		return nil, st
	}
	out, st := fxRead(fo, 0, int(std.EndOfFile))
	if !st.IsSuccess() || len(out) != int(std.EndOfFile) {
		return out, st
	}
	if _, st := fxRead(fo, std.EndOfFile, 1); st != iomgr.StatusEndOfFile {
		return out, iomgr.StatusUnsuccessful
	}
	return out, iomgr.StatusSuccess
}

// fxCall sends a request built by fill on fo and returns its I/O status.
func fxCall(fo *iomgr.FileObject, major iomgr.MajorFunction, minor iomgr.MinorFunction, fill func(sl *iomgr.StackLocation, irp *iomgr.IRP)) iomgr.IOStatusBlock {
	dev := iomgr.RelatedDevice(fo)
	irp := iomgr.BuildSynchronousRequest(major, minor, dev)
	irp.FileObject = fo
	irp.Requestor = "test"
	sl := irp.NextStackLocation()
	sl.FileObject = fo
	if fill != nil {
		fill(sl, irp)
	}
	ios := iomgr.CallDriverAndWait(dev, irp)
	iomgr.FreeIRP(irp)
	return ios
}

func fxQuery(fo *iomgr.FileObject, class iomgr.FileInformationClass, out any) iomgr.Status {
	return fxCall(fo, iomgr.MajorQueryInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
		sl.Parameters.QueryFile.Class = class
		irp.SystemBuffer = out
	}).Status
}

func fxSet(fo *iomgr.FileObject, class iomgr.FileInformationClass, in any) iomgr.Status {
	return fxCall(fo, iomgr.MajorSetInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
		sl.Parameters.SetFile.Class = class
		if r, ok := in.(*iomgr.FileRenameInformation); ok {
			sl.Parameters.SetFile.ReplaceIfExists = r.ReplaceIfExists
		}
		irp.SystemBuffer = in
	}).Status
}

func fxSetEOF(fo *iomgr.FileObject, size int64) iomgr.Status {
	return fxSet(fo, iomgr.FileEndOfFileInformationClass, &iomgr.FileEndOfFileInformation{EndOfFile: size})
}

func fxRename(fo *iomgr.FileObject, to string, replace bool) iomgr.Status {
	return fxSet(fo, iomgr.FileRenameInformationClass, &iomgr.FileRenameInformation{FileName: to, ReplaceIfExists: replace})
}

func fxDelete(fo *iomgr.FileObject) iomgr.Status {
	return fxSet(fo, iomgr.FileDispositionInformationClass, &iomgr.FileDispositionInformation{DeleteFile: true})
}

// fxQueryDir sends one IRP_MN_QUERY_DIRECTORY.
func fxQueryDir(fo *iomgr.FileObject, pattern string, flags uint8, length uint32) ([]iomgr.FileDirectoryEntry, iomgr.Status) {
	var out []iomgr.FileDirectoryEntry
	st := fxCall(fo, iomgr.MajorDirectoryControl, iomgr.MinorQueryDirectory, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
		sl.Flags = flags
		sl.Parameters.QueryDirectory = iomgr.QueryDirectoryParameters{FileName: pattern, Length: length}
		irp.SystemBuffer = &out
	}).Status
	return out, st
}

// fxList lists a directory fully (without "." and "..") with pattern.
func fxList(fo *iomgr.FileObject, pattern string) ([]iomgr.FileDirectoryEntry, iomgr.Status) {
	var all []iomgr.FileDirectoryEntry
	flags := iomgr.SLRestartScan
	for {
		got, st := fxQueryDir(fo, pattern, flags, 4096)
		first := flags != 0
		flags = 0
		switch st {
		case iomgr.StatusSuccess:
		case iomgr.StatusNoMoreFiles:
			return all, iomgr.StatusSuccess
		case iomgr.StatusObjectNameNotFound:
			if first {
				return all, iomgr.StatusSuccess // the first query found nothing
			}
			return all, st
		default:
			return all, st
		}
		for _, e := range got {
			if e.FileName != "." && e.FileName != ".." {
				all = append(all, e)
			}
		}
	}
}

// listDir opens and lists a directory.
func (x *fxVol) listDir(path string) []iomgr.FileDirectoryEntry {
	x.t.Helper()
	fo := x.mustOpen(path, iomgr.FileListDirectory, iomgr.FileOpen, iomgr.FileDirectoryFile)
	defer fxClose(fo)
	es, st := fxList(fo, "*")
	if !st.IsSuccess() {
		x.t.Fatalf("list %s: %v", path, st)
	}
	return es
}

// create makes a file with contents (and its directory, which must exist).
func (x *fxVol) create(path string, data []byte) {
	x.t.Helper()
	fo := x.mustOpen(path, fxRW, iomgr.FileOverwriteIf, iomgr.FileNonDirectoryFile)
	defer fxClose(fo)
	if len(data) > 0 {
		if st := fxWrite(fo, 0, data); st != iomgr.StatusSuccess {
			x.t.Fatalf("write %s: %v", path, st)
		}
	}
}

func (x *fxVol) mkdir(path string) {
	x.t.Helper()
	fo := x.mustOpen(path, iomgr.FileListDirectory, iomgr.FileCreate, iomgr.FileDirectoryFile)
	fxClose(fo)
}

// readFile reads a file through the FSD.
func (x *fxVol) readFile(path string) []byte {
	x.t.Helper()
	fo := x.mustOpen(path, iomgr.GenericRead, iomgr.FileOpen, iomgr.FileNonDirectoryFile)
	defer fxClose(fo)
	b, st := fxReadAll(fo)
	if !st.IsSuccess() {
		x.t.Fatalf("read %s: %v", path, st)
	}
	return b
}

// walk returns every file (path → contents) and directory (path → nil,
// with a trailing `\`) below dir.
func (x *fxVol) walk(dir string) map[string][]byte {
	x.t.Helper()
	out := map[string][]byte{}
	var rec func(d string)
	rec = func(d string) {
		for _, e := range x.listDir(d) {
			p := strings.TrimSuffix(d, `\`) + `\` + e.FileName
			if e.FileAttributes&iomgr.FileAttributeDirectory != 0 {
				out[p+`\`] = nil
				rec(p)
				continue
			}
			out[p] = x.readFile(p)
		}
	}
	rec(dir)
	return out
}

// fxContent is deterministic file content.
func fxContent(seed string, n int) []byte {
	b := make([]byte, n)
	h := uint32(2166136261)
	for _, c := range []byte(seed) {
		h = (h ^ uint32(c)) * 16777619
	}
	for i := range b {
		h ^= h << 13
		h ^= h >> 17
		h ^= h << 5
		b[i] = byte(h)
	}
	return b
}

// fxMtoolsTree copies the whole image out with mcopy and returns it as
// walk does (paths with `\`).
func fxMtoolsTree(t testing.TB, img string) map[string][]byte {
	t.Helper()
	fattest.Need(t, "mcopy")
	dir := t.TempDir()
	out, code := fattest.Run(t, "mcopy", "-s", "-n", "-i", img, "::/", dir+"/")
	if code != 0 && !strings.Contains(out, "No files") {
		// An empty volume makes mcopy complain; anything else is an error.
		entries, _ := os.ReadDir(dir)
		if len(entries) > 0 || !strings.Contains(out, "not found") {
			t.Fatalf("mcopy -s: exit %d:\n%s", code, out)
		}
	}
	tree := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel := `\` + strings.ReplaceAll(strings.TrimPrefix(p, dir+"/"), "/", `\`)
		if info.IsDir() {
			tree[rel+`\`] = nil
			return nil
		}
		b, err := os.ReadFile(p)
		tree[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// fxCompareTrees reports the differences between two trees.
func fxCompareTrees(t testing.TB, what string, got, want map[string][]byte) {
	t.Helper()
	bad := 0
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: %q missing", what, p)
			bad++
		case !bytes.Equal(g, w):
			t.Errorf("%s: %q differs: %d bytes, want %d", what, p, len(g), len(w))
			bad++
		}
		if bad > 10 {
			t.FailNow()
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %q", what, p)
		}
	}
}
