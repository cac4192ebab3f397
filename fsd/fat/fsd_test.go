package fat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

var fxFAT16 = fxLayouts[1]

func TestCreateDispositions(t *testing.T) {
	x := fxNew(t, fxFAT16)
	type step struct {
		path string
		disp iomgr.CreateDisposition
		opts iomgr.CreateOptions
		want iomgr.Status
		info uint64
	}
	steps := []step{
		{`\a.txt`, iomgr.FileOpen, 0, iomgr.StatusObjectNameNotFound, 0},
		{`\a.txt`, iomgr.FileOverwrite, 0, iomgr.StatusObjectNameNotFound, 0},
		{`\a.txt`, iomgr.FileCreate, 0, iomgr.StatusSuccess, iomgr.FileCreated},
		{`\a.txt`, iomgr.FileCreate, 0, iomgr.StatusObjectNameCollision, 0},
		{`\A.TXT`, iomgr.FileOpen, 0, iomgr.StatusSuccess, iomgr.FileOpened},
		{`\a.txt`, iomgr.FileOpenIf, 0, iomgr.StatusSuccess, iomgr.FileOpened},
		{`\a.txt`, iomgr.FileOverwrite, 0, iomgr.StatusSuccess, iomgr.FileOverwritten},
		{`\a.txt`, iomgr.FileOverwriteIf, 0, iomgr.StatusSuccess, iomgr.FileOverwritten},
		{`\a.txt`, iomgr.FileSupersede, 0, iomgr.StatusSuccess, iomgr.FileSuperseded},
		{`\b.txt`, iomgr.FileSupersede, 0, iomgr.StatusSuccess, iomgr.FileCreated},
		{`\c.txt`, iomgr.FileOpenIf, 0, iomgr.StatusSuccess, iomgr.FileCreated},
		{`\d.txt`, iomgr.FileOverwriteIf, 0, iomgr.StatusSuccess, iomgr.FileCreated},
		{`\a.txt`, iomgr.FileOpen, iomgr.FileDirectoryFile, iomgr.StatusNotADirectory, 0},
		{`\dir`, iomgr.FileCreate, iomgr.FileDirectoryFile, iomgr.StatusSuccess, iomgr.FileCreated},
		{`\dir`, iomgr.FileOpenIf, iomgr.FileDirectoryFile, iomgr.StatusSuccess, iomgr.FileOpened},
		{`\dir`, iomgr.FileOpen, iomgr.FileNonDirectoryFile, iomgr.StatusFileIsADirectory, 0},
		{`\dir`, iomgr.FileCreate, 0, iomgr.StatusObjectNameCollision, 0},
		{`\dir`, iomgr.FileOverwriteIf, 0, iomgr.StatusObjectNameCollision, 0},
		{`\dir\`, iomgr.FileOpen, 0, iomgr.StatusSuccess, iomgr.FileOpened},
		{`\a.txt\`, iomgr.FileOpen, 0, iomgr.StatusObjectNameInvalid, 0},
		{`\dir2`, iomgr.FileSupersede, iomgr.FileDirectoryFile, iomgr.StatusInvalidParameter, 0},
		{`\dir\sub\x`, iomgr.FileCreate, 0, iomgr.StatusObjectPathNotFound, 0},
		{`\a.txt\x`, iomgr.FileCreate, 0, iomgr.StatusObjectPathNotFound, 0},
		{`\bad<name`, iomgr.FileCreate, 0, iomgr.StatusObjectNameInvalid, 0},
		{`\bad*`, iomgr.FileOpen, 0, iomgr.StatusObjectNameInvalid, 0},
		{`\..`, iomgr.FileOpen, 0, iomgr.StatusObjectNameInvalid, 0},
		{`\two\\slashes`, iomgr.FileOpen, 0, iomgr.StatusObjectNameInvalid, 0},
		{`\` + strings.Repeat("x", 256), iomgr.FileCreate, 0, iomgr.StatusObjectNameInvalid, 0},
		{`\` + strings.Repeat("x", 255), iomgr.FileCreate, 0, iomgr.StatusSuccess, iomgr.FileCreated},
		{`\trailing dots...`, iomgr.FileCreate, 0, iomgr.StatusSuccess, iomgr.FileCreated},
		{`\trailing dots`, iomgr.FileOpen, 0, iomgr.StatusSuccess, iomgr.FileOpened},
		{`\`, iomgr.FileOpen, iomgr.FileDirectoryFile, iomgr.StatusSuccess, iomgr.FileOpened},
		{`\`, iomgr.FileOpen, iomgr.FileNonDirectoryFile, iomgr.StatusFileIsADirectory, 0},
		{`\`, iomgr.FileCreate, 0, iomgr.StatusAccessDenied, 0},
		{`\x`, iomgr.FileOpen, iomgr.FileDirectoryFile | iomgr.FileNonDirectoryFile, iomgr.StatusInvalidParameter, 0},
		{``, iomgr.FileOpen, 0, iomgr.StatusSuccess, iomgr.FileOpened},
	}
	for _, s := range steps {
		fo, info, err := x.open(s.path, fxRW, s.disp, s.opts)
		st := iomgr.StatusOf(err)
		if st != s.want || (err == nil && info != s.info) {
			t.Errorf("open %q %v %#x: %v info %d, want %v info %d", s.path, s.disp, s.opts, err, info, s.want, s.info)
		}
		if err == nil {
			fxClose(fo)
		}
	}
	// Overwrite empties the file; supersede too.
	x.create(`\a.txt`, []byte("hello"))
	fo := x.mustOpen(`\a.txt`, fxRW, iomgr.FileOverwrite, 0)
	var std iomgr.FileStandardInformation
	if st := fxQuery(fo, iomgr.FileStandardInformationClass, &std); st != iomgr.StatusSuccess || std.EndOfFile != 0 || std.AllocationSize != 0 {
		t.Fatalf("after overwrite: %v %+v", st, std)
	}
	fxClose(fo)
	x.close()
	fxFsck(t, x.img)
}

func TestQueryInformation(t *testing.T) {
	x := fxNew(t, fxLayouts[2])
	x.mkdir(`\Sub Dir`)
	x.create(`\Sub Dir\File Name.txt`, fxContent("x", 1000))
	fo := x.mustOpen(`\sub dir\FILE NAME.TXT`, fxRW, iomgr.FileOpen, 0)
	var all iomgr.FileAllInformation
	if st := fxQuery(fo, iomgr.FileAllInformationClass, &all); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	if all.Name.FileName != `\Sub Dir\File Name.txt` || all.Standard.EndOfFile != 1000 ||
		all.Standard.AllocationSize != 1024 || all.Standard.Directory ||
		all.Basic.FileAttributes != iomgr.FileAttributeArchive || all.Basic.CreationTime.IsZero() ||
		all.Internal.IndexNumber == 0 {
		t.Fatalf("%+v", all)
	}
	// Basic: times and attributes; zero times are left alone.
	when := fxFixedNow.AddDate(-3, 0, 0)
	if st := fxSet(fo, iomgr.FileBasicInformationClass, &iomgr.FileBasicInformation{LastWriteTime: when,
		FileAttributes: iomgr.FileAttributeHidden | iomgr.FileAttributeReadOnly}); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	var b iomgr.FileBasicInformation
	fxQuery(fo, iomgr.FileBasicInformationClass, &b)
	if !b.LastWriteTime.Equal(when) || b.FileAttributes != iomgr.FileAttributeHidden|iomgr.FileAttributeReadOnly ||
		!b.CreationTime.Equal(all.Basic.CreationTime) {
		t.Fatalf("%+v", b)
	}
	// Position.
	if st := fxSet(fo, iomgr.FilePositionInformationClass, &iomgr.FilePositionInformation{CurrentByteOffset: 990}); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	if got, st := fxRead(fo, useFilePointerPosition, 100); st != iomgr.StatusSuccess || len(got) != 10 {
		t.Fatalf("read at the position: %v %d", st, len(got))
	}
	var pos iomgr.FilePositionInformation
	if fxQuery(fo, iomgr.FilePositionInformationClass, &pos); pos.CurrentByteOffset != 1000 {
		t.Fatalf("position %d", pos.CurrentByteOffset)
	}
	fxClose(fo)
	// A read-only file refuses write access and deletion.
	if _, _, err := x.open(`\Sub Dir\File Name.txt`, fxRW, iomgr.FileOpen, 0); !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("open a read-only file for writing: %v", err)
	}
	fo = x.mustOpen(`\Sub Dir\File Name.txt`, iomgr.GenericRead|iomgr.Delete, iomgr.FileOpen, 0)
	if st := fxDelete(fo); st != iomgr.StatusCannotDelete {
		t.Fatalf("delete a read-only file: %v", st)
	}
	fxClose(fo)
	// The directory and the volume.
	d := x.mustOpen(`\Sub Dir`, iomgr.GenericRead, iomgr.FileOpen, 0)
	var std iomgr.FileStandardInformation
	if fxQuery(d, iomgr.FileStandardInformationClass, &std); !std.Directory || std.AllocationSize != 512 {
		t.Fatalf("directory %+v", std)
	}
	var vi iomgr.FileFsVolumeInformation
	var si iomgr.FileFsSizeInformation
	var ai iomgr.FileFsAttributeInformation
	for class, out := range map[iomgr.FSInformationClass]any{iomgr.FileFsVolumeInformationClass: &vi,
		iomgr.FileFsSizeInformationClass: &si, iomgr.FileFsAttributeInformationClass: &ai} {
		st := fxCall(d, iomgr.MajorQueryVolumeInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
			sl.Parameters.QueryVolume.Class = class
			irp.SystemBuffer = out
		}).Status
		if st != iomgr.StatusSuccess {
			t.Fatalf("volume class %d: %v", class, st)
		}
	}
	g := x.volume().geometry()
	if vi.VolumeSerialNumber != 0x1234ABCD || ai.FileSystemName != "FAT32" || ai.MaximumComponentNameLength != 255 ||
		si.TotalAllocationUnits != int64(g.ClusterCount) || si.AvailableAllocationUnits != int64(x.volume().freeClusters()) ||
		si.BytesPerSector != 512 || si.SectorsPerAllocationUnit != 1 {
		t.Fatalf("%+v %+v %+v", vi, si, ai)
	}
	fxClose(d)
	x.close()
	fxFsck(t, x.img)
}

func TestSharingViolation(t *testing.T) {
	x := fxNew(t, fxFAT16)
	x.create(`\f`, []byte("data"))
	open := func(access iomgr.AccessMask, share iomgr.ShareAccess) (*iomgr.FileObject, error) {
		fo, _, err := x.mm.Open(`\DosDevices\v\f`, mount.OpenOptions{DesiredAccess: access, ShareAccess: share, Disposition: iomgr.FileOpen})
		return fo, err
	}
	a, err := open(iomgr.GenericRead, iomgr.ShareRead)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(iomgr.GenericWrite, iomgr.ShareRead|iomgr.ShareWrite); !errors.Is(err, iomgr.StatusSharingViolation) {
		t.Fatalf("write while shared for reading only: %v", err)
	}
	b, err := open(iomgr.GenericRead, iomgr.ShareRead)
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if _, err := open(iomgr.GenericRead, 0); !errors.Is(err, iomgr.StatusSharingViolation) {
		t.Fatalf("reader denying read to open readers: %v", err)
	}
	// Attribute-only opens never conflict.
	c, err := open(iomgr.FileReadAttributes, 0)
	if err != nil {
		t.Fatalf("attribute open: %v", err)
	}
	fxClose(c)
	fxClose(a)
	fxClose(b)
	w, err := open(iomgr.GenericWrite, 0)
	if err != nil {
		t.Fatalf("exclusive writer after the readers left: %v", err)
	}
	if _, err := open(iomgr.GenericRead, fxShr); !errors.Is(err, iomgr.StatusSharingViolation) {
		t.Fatalf("reader against an exclusive writer: %v", err)
	}
	if _, _, err := x.open(`\f`, fxRW, iomgr.FileOverwrite, 0); !errors.Is(err, iomgr.StatusSharingViolation) {
		t.Fatalf("overwrite against an exclusive writer: %v", err)
	}
	fxClose(w)
	x.close()
}

func TestDeleteOnCloseAndDisposition(t *testing.T) {
	x := fxNew(t, fxFAT16)
	v := x.volume()
	free := v.freeClusters()
	fo := x.mustOpen(`\temp.bin`, fxRW, iomgr.FileCreate, iomgr.FileDeleteOnClose)
	if st := fxWrite(fo, 0, fxContent("t", 50000)); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	// A second handle keeps the file alive; the delete happens when the
	// last one is cleaned up. From the first cleanup on, the delete is
	// pending: new opens fail.
	fo2 := x.mustOpen(`\temp.bin`, iomgr.GenericRead, iomgr.FileOpen, 0)
	fxClose(fo)
	if _, _, err := x.open(`\temp.bin`, iomgr.GenericRead, iomgr.FileOpen, 0); !errors.Is(err, iomgr.StatusDeletePending) {
		t.Fatalf("open after the delete-on-close handle closed: %v", err)
	}
	if got, _ := fxReadAll(fo2); len(got) != 50000 {
		t.Fatalf("read %d bytes before the last close", len(got))
	}
	fxClose(fo2)
	if _, _, err := x.open(`\temp.bin`, iomgr.GenericRead, iomgr.FileOpen, 0); !errors.Is(err, iomgr.StatusObjectNameNotFound) {
		t.Fatalf("after delete-on-close: %v", err)
	}
	if got := v.freeClusters(); got != free {
		t.Fatalf("free clusters %d, want %d", got, free)
	}
	// Disposition: delete pending refuses new opens; undone by false.
	x.create(`\keep`, []byte("k"))
	fo = x.mustOpen(`\keep`, iomgr.Delete, iomgr.FileOpen, 0)
	if st := fxDelete(fo); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	if _, _, err := x.open(`\keep`, iomgr.GenericRead, iomgr.FileOpen, 0); !errors.Is(err, iomgr.StatusDeletePending) {
		t.Fatalf("open a file being deleted: %v", err)
	}
	fxSet(fo, iomgr.FileDispositionInformationClass, &iomgr.FileDispositionInformation{DeleteFile: false})
	fxClose(fo)
	if got := x.readFile(`\keep`); string(got) != "k" {
		t.Fatal("undeleted file lost")
	}
	// Directories must be empty; delete-on-close of a non-empty one fails.
	x.mkdir(`\d`)
	x.create(`\d\f`, nil)
	d := x.mustOpen(`\d`, iomgr.Delete, iomgr.FileOpen, iomgr.FileDirectoryFile)
	if st := fxDelete(d); st != iomgr.StatusDirectoryNotEmpty {
		t.Fatalf("delete a non-empty directory: %v", st)
	}
	fxClose(d)
	if _, _, err := x.open(`\d`, iomgr.Delete, iomgr.FileOpen, iomgr.FileDirectoryFile|iomgr.FileDeleteOnClose); !errors.Is(err, iomgr.StatusDirectoryNotEmpty) {
		t.Fatalf("delete-on-close of a non-empty directory: %v", err)
	}
	f := x.mustOpen(`\d\f`, iomgr.Delete, iomgr.FileOpen, iomgr.FileDeleteOnClose)
	fxClose(f)
	d = x.mustOpen(`\d`, iomgr.Delete, iomgr.FileOpen, iomgr.FileDirectoryFile|iomgr.FileDeleteOnClose)
	fxClose(d)
	if es := x.listDir(`\`); len(es) != 1 || es[0].FileName != "keep" {
		t.Fatalf("root: %+v", es)
	}
	if r := x.mustOpen(`\`, iomgr.Delete, iomgr.FileOpen, 0); fxDelete(r) != iomgr.StatusCannotDelete {
		t.Fatal("the root directory could be deleted")
	} else {
		fxClose(r)
	}
	x.close()
	fxFsck(t, x.img)
}

func TestRename(t *testing.T) {
	x := fxNew(t, fxLayouts[2])
	x.mkdir(`\a`)
	x.mkdir(`\a\b`)
	x.mkdir(`\c`)
	x.create(`\a\b\file.txt`, []byte("one"))
	x.create(`\c\other.txt`, []byte("two"))
	x.create(`\c\ro.txt`, []byte("ro"))
	ren := func(from, to string, replace bool) iomgr.Status {
		fo := x.mustOpen(from, iomgr.Delete, iomgr.FileOpen, 0)
		defer fxClose(fo)
		return fxRename(fo, to, replace)
	}
	if st := ren(`\a\b\file.txt`, `\c\other.txt`, false); st != iomgr.StatusObjectNameCollision {
		t.Fatalf("rename onto an existing file: %v", st)
	}
	if st := ren(`\a\b\file.txt`, `\c\OTHER.TXT`, true); st != iomgr.StatusSuccess {
		t.Fatalf("rename replacing: %v", st)
	}
	if got := x.readFile(`\c\other.txt`); string(got) != "one" {
		t.Fatalf("replaced file reads %q", got)
	}
	// The replaced file's short name is free again: no long name needed.
	if es := x.listDir(`\c`); len(es) != 2 || es[0].FileName != "OTHER.TXT" || es[0].ShortName != "" || es[1].FileName != "ro.txt" {
		t.Fatalf("\\c: %+v", es)
	}
	// An open target cannot be replaced, nor a directory.
	held := x.mustOpen(`\c\ro.txt`, iomgr.GenericRead, iomgr.FileOpen, 0)
	if st := ren(`\c\OTHER.TXT`, `\c\ro.txt`, true); st != iomgr.StatusAccessDenied {
		t.Fatalf("replace an open file: %v", st)
	}
	fxClose(held)
	if st := ren(`\c\OTHER.TXT`, `\a`, true); st != iomgr.StatusAccessDenied {
		t.Fatalf("replace a directory: %v", st)
	}
	// A directory moves with its contents, ".." follows, and cannot move
	// into itself.
	if st := ren(`\a`, `\a\b\a`, false); st != iomgr.StatusInvalidParameter {
		t.Fatalf("move into itself: %v", st)
	}
	if st := ren(`\a\b`, `\c\b moved`, false); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	x.create(`\c\b moved\new.txt`, []byte("new"))
	// Case-only rename in place, and a rename to a name with no path.
	if st := ren(`\c\b moved`, `\c\B MOVED`, false); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	if st := ren(`\c\ro.txt`, `renamed.txt`, false); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	// Through a target directory opened with SL_OPEN_TARGET_DIRECTORY.
	src := x.mustOpen(`\c\renamed.txt`, iomgr.Delete, iomgr.FileOpen, 0)
	target := iomgr.NewFileObject(x.vol, `\a\target name.txt`)
	target.VPB = x.vol.VPB()
	if err := target.VPB.Reference(nil); err != nil {
		t.Fatal(err)
	}
	dev := iomgr.RelatedDevice(target)
	irp := iomgr.BuildSynchronousRequest(iomgr.MajorCreate, 0, dev)
	irp.FileObject = target
	sl := irp.NextStackLocation()
	sl.FileObject, sl.Flags = target, iomgr.SLOpenTargetDirectory
	sl.Parameters.Create = iomgr.CreateParameters{DesiredAccess: iomgr.FileAddFile, ShareAccess: fxShr}
	ios := iomgr.CallDriverAndWait(dev, irp)
	iomgr.FreeIRP(irp)
	if ios.Status != iomgr.StatusSuccess || ios.Information != iomgr.FileDoesNotExist {
		t.Fatalf("open target directory: %+v", ios)
	}
	target.OpenHandle()
	st := fxCall(src, iomgr.MajorSetInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
		sl.Parameters.SetFile = iomgr.SetFileParameters{Class: iomgr.FileRenameInformationClass, FileObject: target}
		irp.SystemBuffer = &iomgr.FileRenameInformation{FileName: `\a\target name.txt`}
	}).Status
	fxClose(target)
	fxClose(src)
	if st != iomgr.StatusSuccess {
		t.Fatalf("rename through a target directory: %v", st)
	}
	want := map[string][]byte{`\a\`: nil, `\c\`: nil, `\c\B MOVED\`: nil, `\c\B MOVED\new.txt`: []byte("new"),
		`\c\OTHER.TXT`: []byte("one"), `\a\target name.txt`: []byte("ro")}
	fxCompareTrees(t, "vdisk", x.walk(`\`), want)
	x.close()
	fxFsck(t, x.img)
	fxCompareTrees(t, "mtools", fxMtoolsTree(t, x.img), want)
	// ".." of the moved directory points to its new parent: fsck checks
	// it; mdir of the moved directory's ".." proves it too.
}

func TestQueryDirectoryWildcards(t *testing.T) {
	x := fxNew(t, fxFAT16)
	x.mkdir(`\d`)
	for _, n := range []string{"alpha.txt", "Beta.TXT", "gamma.doc", "A Long Name.text", "delta", "x.y.z"} {
		x.create(`\d\`+n, []byte(n))
	}
	d := x.mustOpen(`\d`, iomgr.FileListDirectory, iomgr.FileOpen, iomgr.FileDirectoryFile)
	names := func(es []iomgr.FileDirectoryEntry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.FileName)
		}
		slices.Sort(s)
		return strings.Join(s, ",")
	}
	for _, c := range []struct{ pat, want string }{
		{"*", ".,..,A Long Name.text,Beta.TXT,alpha.txt,delta,gamma.doc,x.y.z"},
		{"*.*", ".,..,A Long Name.text,Beta.TXT,alpha.txt,delta,gamma.doc,x.y.z"},
		{"*.txt", "Beta.TXT,alpha.txt"},
		{"?ETA.*", "Beta.TXT"},
		{"along*", "A Long Name.text"}, // matches the short name ALONGN~1.TEX
		{"*.tex", "A Long Name.text"},
		{"DELTA", "delta"},
		{"x.*", "x.y.z"},
		{"*a", "delta"},
	} {
		es, st := fxQueryDir(d, c.pat, iomgr.SLRestartScan, 0)
		if st != iomgr.StatusSuccess || names(es) != c.want {
			t.Errorf("pattern %q: %v %s, want %s", c.pat, st, names(es), c.want)
		}
		if _, st := fxQueryDir(d, "", 0, 0); st != iomgr.StatusNoMoreFiles {
			t.Errorf("pattern %q: second query %v", c.pat, st)
		}
	}
	if _, st := fxQueryDir(d, "nothing*", iomgr.SLRestartScan, 0); st != iomgr.StatusObjectNameNotFound {
		t.Errorf("no match: %v", st)
	}
	// One at a time.
	var one []string
	for flags := iomgr.SLRestartScan | iomgr.SLReturnSingleEntry; ; flags = iomgr.SLReturnSingleEntry {
		es, st := fxQueryDir(d, "*", flags, 0)
		if st == iomgr.StatusNoMoreFiles {
			break
		}
		if st != iomgr.StatusSuccess || len(es) != 1 {
			t.Fatalf("single entry: %v %d", st, len(es))
		}
		one = append(one, es[0].FileName)
	}
	if len(one) != 8 || one[0] != "." || one[1] != ".." {
		t.Fatalf("single entries %q", one)
	}
	// Short names are reported for long-named entries.
	es, _ := fxQueryDir(d, "A Long Name.text", iomgr.SLRestartScan, 0)
	if len(es) != 1 || es[0].ShortName != "ALONGN~1.TEX" || es[0].EndOfFile != 16 || es[0].AllocationSize != 1024 {
		t.Fatalf("%+v", es)
	}
	fxClose(d)
	// The root has no dots; a small buffer takes the enumeration in parts.
	for i := 0; i < 30; i++ {
		x.create(fmt.Sprintf(`\file %02d`, i), nil)
	}
	r := x.mustOpen(`\`, iomgr.FileListDirectory, iomgr.FileOpen, 0)
	seen := map[string]bool{}
	calls := 0
	for flags := iomgr.SLRestartScan; ; flags = 0 {
		es, st := fxQueryDir(r, "*", flags, 500)
		if st == iomgr.StatusNoMoreFiles {
			break
		}
		calls++
		for _, e := range es {
			if seen[e.FileName] {
				t.Fatalf("%q twice", e.FileName)
			}
			seen[e.FileName] = true
		}
	}
	if len(seen) != 31 || seen["."] || calls < 5 {
		t.Fatalf("root: %d entries in %d calls", len(seen), calls)
	}
	fxClose(r)
	x.close()
}

func TestReadWriteEdges(t *testing.T) {
	for _, l := range []fxLayout{fxLayouts[0], fxLayouts[3]} {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			fo := x.mustOpen(`\f`, fxRW, iomgr.FileCreate, 0)
			model := []byte{}
			write := func(off int, data []byte) {
				t.Helper()
				if st := fxWrite(fo, int64(off), data); st != iomgr.StatusSuccess {
					t.Fatalf("write %d at %d: %v", len(data), off, st)
				}
				if off > len(model) {
					model = append(model, make([]byte, off-len(model))...)
				}
				if end := off + len(data); end > len(model) {
					model = append(model, make([]byte, end-len(model))...)
				}
				copy(model[off:], data)
			}
			write(0, []byte("hello"))
			write(3, []byte("LO world"))
			write(5000, fxContent("gap", 3))  // a gap of zeros
			write(511, fxContent("edge", 2))  // across a sector boundary
			write(4095, fxContent("c", 8193)) // across clusters
			write(len(model), []byte("appended"))
			// Appending with FILE_WRITE_TO_END_OF_FILE.
			if st := fxWrite(fo, writeToEndOfFile, []byte("EOF")); st != iomgr.StatusSuccess {
				t.Fatal(st)
			}
			model = append(model, "EOF"...)
			for _, r := range [][2]int{{0, 1}, {1, 510}, {510, 3}, {4000, 5000}, {len(model) - 3, 100}} {
				got, st := fxRead(fo, int64(r[0]), r[1])
				want := model[r[0]:min(r[0]+r[1], len(model))]
				if st != iomgr.StatusSuccess || !bytes.Equal(got, want) {
					t.Fatalf("read %v: %v, %d bytes (want %d)", r, st, len(got), len(want))
				}
			}
			if _, st := fxRead(fo, int64(len(model)), 1); st != iomgr.StatusEndOfFile {
				t.Fatalf("read at EOF: %v", st)
			}
			if got, st := fxRead(fo, int64(len(model)), 0); st != iomgr.StatusSuccess || len(got) != 0 {
				t.Fatalf("empty read at EOF: %v", st)
			}
			if st := fxWrite(fo, ondisk.MaxFileSize-1, []byte("xy")); st != iomgr.StatusFileTooLarge {
				t.Fatalf("write past 4 GiB: %v", st)
			}
			if st := fxSetEOF(fo, ondisk.MaxFileSize+1); st != iomgr.StatusFileTooLarge {
				t.Fatalf("size past 4 GiB: %v", st)
			}
			// Truncate into the middle of a sector, then grow: zeros.
			if st := fxSetEOF(fo, 700); st != iomgr.StatusSuccess {
				t.Fatal(st)
			}
			if st := fxSetEOF(fo, 2000); st != iomgr.StatusSuccess {
				t.Fatal(st)
			}
			model = append(model[:700], make([]byte, 1300)...)
			if got, _ := fxReadAll(fo); !bytes.Equal(got, model) {
				t.Fatal("after truncate and extend")
			}
			// No access: reads and writes are refused.
			ro := x.mustOpen(`\f`, iomgr.FileReadAttributes, iomgr.FileOpen, 0)
			if _, st := fxRead(ro, 0, 10); st != iomgr.StatusAccessDenied {
				t.Fatalf("read without read access: %v", st)
			}
			if st := fxWrite(ro, 0, []byte("x")); st != iomgr.StatusAccessDenied {
				t.Fatalf("write without write access: %v", st)
			}
			fxClose(ro)
			dir := x.mustOpen(`\`, fxRW, iomgr.FileOpen, 0)
			if _, st := fxRead(dir, 0, 10); st != iomgr.StatusInvalidDeviceRequest {
				t.Fatalf("read a directory: %v", st)
			}
			fxClose(dir)
			fxClose(fo)
			x.close()
			fxFsck(t, x.img)
			if got := fxMtoolsTree(t, x.img)[`\f`]; !bytes.Equal(got, model) {
				t.Fatal("mtools reads something else")
			}
		})
	}
}

func TestPreallocationIsTrimmedAtCleanup(t *testing.T) {
	x := fxNew(t, fxFAT16)
	v := x.volume()
	free := v.freeClusters()
	fo, _, err := x.mm.Open(`\DosDevices\v\pre`, mount.OpenOptions{DesiredAccess: fxRW, Disposition: iomgr.FileCreate})
	if err != nil {
		t.Fatal(err)
	}
	if st := fxSet(fo, iomgr.FileAllocationInformationClass, &iomgr.FileAllocationInformation{AllocationSize: 100000}); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	var std iomgr.FileStandardInformation
	fxQuery(fo, iomgr.FileStandardInformationClass, &std)
	if std.AllocationSize != 100352 || std.EndOfFile != 0 {
		t.Fatalf("%+v", std)
	}
	fxWrite(fo, 0, make([]byte, 1500))
	fxClose(fo)
	if got := v.freeClusters(); got != free-2 {
		t.Fatalf("free %d, want %d", got, free-2)
	}
	x.close()
	fxFsck(t, x.img)
}

func TestDiskFull(t *testing.T) {
	for _, l := range []fxLayout{fxLayouts[0], fxLayouts[2]} {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			v := x.volume()
			x.create(`\keep.txt`, []byte("keep"))
			free := v.freeClusters()
			cs := int(v.geometry().ClusterSize)
			// A write needing more than is free fails whole.
			fo := x.mustOpen(`\fill`, fxRW, iomgr.FileCreate, 0)
			if st := fxWrite(fo, 0, make([]byte, (int(free)+1)*cs)); st != iomgr.StatusDiskFull {
				t.Fatalf("oversized write: %v", st)
			}
			if got := v.freeClusters(); got != free {
				t.Fatalf("a failed write left %d clusters allocated", free-got)
			}
			// Fill it chunk by chunk until full.
			chunk := fxContent("fill", 64*cs)
			off := 0
			for {
				st := fxWrite(fo, int64(off), chunk)
				if st == iomgr.StatusDiskFull {
					break
				}
				if st != iomgr.StatusSuccess {
					t.Fatal(st)
				}
				off += len(chunk)
			}
			for v.freeClusters() > 0 {
				if st := fxWrite(fo, int64(off), chunk[:cs]); st != iomgr.StatusSuccess {
					t.Fatal(st)
				}
				off += cs
			}
			if st := fxWrite(fo, int64(off), []byte("x")); st != iomgr.StatusDiskFull {
				t.Fatalf("write on a full volume: %v", st)
			}
			if _, _, err := x.open(`\newdir`, fxRW, iomgr.FileCreate, iomgr.FileDirectoryFile); !errors.Is(err, iomgr.StatusDiskFull) {
				t.Fatalf("mkdir on a full volume: %v", err)
			}
			if st := fxSetEOF(fo, int64(off+cs)); st != iomgr.StatusDiskFull {
				t.Fatalf("extend on a full volume: %v", st)
			}
			fxClose(fo)
			if got := x.readFile(`\fill`); len(got) != off {
				t.Fatalf("full file reads %d bytes, want %d", len(got), off)
			}
			x.close()
			fxFsck(t, x.img)
			// Delete it: the free count is back where it was.
			y := fxOpen(t, x.img, l.sectorSize, fxOpt{})
			f := y.mustOpen(`\fill`, iomgr.Delete, iomgr.FileOpen, 0)
			fxDelete(f)
			fxClose(f)
			if got := y.volume().freeClusters(); got != free {
				t.Fatalf("free %d after delete, want %d", got, free)
			}
			y.close()
			fxFsck(t, x.img)
		})
	}
}

func TestFixedRootDirectoryFull(t *testing.T) {
	x := fxNew(t, fxLayouts[0]) // 224 root entries
	n := 0
	for ; n < 300; n++ {
		fo, _, err := x.open(fmt.Sprintf(`\F%03d`, n), fxRW, iomgr.FileCreate, 0)
		if errors.Is(err, iomgr.StatusCannotMake) { // as FastFAT: the directory, not the volume, is full
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fxClose(fo)
	}
	if n != 224 {
		t.Fatalf("%d files fit in a 224-entry root", n)
	}
	x.close()
	fxFsck(t, x.img)
}

func TestLargeDirectory(t *testing.T) {
	x := fxNew(t, fxLayouts[2])
	x.mkdir(`\big`)
	const n = 3000
	for i := 0; i < n; i++ {
		fo, _, err := x.open(fmt.Sprintf(`\big\A rather long file name number %05d.txt`, i), fxRW, iomgr.FileCreate, 0)
		if err != nil {
			t.Fatal(err)
		}
		fxClose(fo)
	}
	if es := x.listDir(`\big`); len(es) != n {
		t.Fatalf("%d entries", len(es))
	}
	x.close()
	fxFsck(t, x.img)
	out := fattest.Must(t, "mdir", "-i", x.img, "-b", "::/big")
	if got := strings.Count(out, "\n"); got != n {
		t.Fatalf("mdir lists %d", got)
	}
}

func TestForcedDismount(t *testing.T) {
	x := fxNew(t, fxFAT16)
	before := x.io.DeviceCount()
	x.create(`\f.txt`, []byte("data"))
	mounted := x.io.DeviceCount()
	if mounted != before+1 {
		t.Fatalf("mount made %d devices", mounted-before)
	}
	a := x.mustOpen(`\f.txt`, fxRW, iomgr.FileOpen, 0)
	d := x.mustOpen(`\`, iomgr.GenericRead, iomgr.FileOpen, 0)
	if err := x.mm.Dismount(x.vol, mount.DismountOptions{}); !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("dismount with handles open: %v", err)
	}
	if err := x.mm.Dismount(x.vol, mount.DismountOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, st := fxRead(a, 0, 4); st != iomgr.StatusVolumeDismounted {
		t.Fatalf("read on an old handle: %v", st)
	}
	if st := fxWrite(a, 0, []byte("x")); st != iomgr.StatusVolumeDismounted {
		t.Fatalf("write on an old handle: %v", st)
	}
	var std iomgr.FileStandardInformation
	if st := fxQuery(a, iomgr.FileStandardInformationClass, &std); st != iomgr.StatusVolumeDismounted {
		t.Fatalf("query on an old handle: %v", st)
	}
	if _, st := fxQueryDir(d, "*", 0, 0); st != iomgr.StatusVolumeDismounted {
		t.Fatalf("directory query on an old handle: %v", st)
	}
	if st := fxCall(a, iomgr.MajorFlushBuffers, 0, nil).Status; st != iomgr.StatusVolumeDismounted {
		t.Fatalf("flush on an old handle: %v", st)
	}
	if st := fxCall(a, iomgr.MajorCleanup, 0, nil).Status; st != iomgr.StatusSuccess {
		t.Fatalf("cleanup on an old handle: %v", st)
	}
	if x.io.DeviceCount() != mounted {
		t.Fatal("the volume device went before its last handle")
	}
	// The image is clean already: fsck it while the handles are open.
	fxFsck(t, x.img)
	fxClose(a)
	fxClose(d)
	if got := x.io.DeviceCount(); got != before {
		t.Fatalf("device count %d after the last close, want %d", got, before)
	}
	// A new open mounts afresh and sees the data.
	if got := x.readFile(`\f.txt`); string(got) != "data" {
		t.Fatalf("after remount: %q", got)
	}
	x.close()
	if got := x.io.DeviceCount(); got >= before {
		t.Fatalf("device count %d after close", got)
	}
}

func TestDirtyStateAndShutdown(t *testing.T) {
	for _, l := range []fxLayout{fxLayouts[1], fxLayouts[2]} {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			g := x.volume().geometry()
			raw := func() (bool, bool) { return fxDirtyState(t, x.img, g) }
			// Mounting writes nothing: the volume is marked dirty before
			// the first change.
			if dirty, clean := raw(); dirty || !clean {
				t.Fatalf("mounted: boot sector dirty %v, FAT[1] clean %v", dirty, clean)
			}
			x.create(`\f`, []byte("x"))
			if dirty, clean := raw(); !dirty || clean {
				t.Fatalf("after the first change: boot sector dirty %v, FAT[1] clean %v", dirty, clean)
			}
			// SHUTDOWN to the control device leaves every volume clean.
			cdo := x.fs.controlDevice
			irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorShutdown, cdo, nil, 0)
			if st := iomgr.CallDriverAndWait(cdo, irp).Status; st != iomgr.StatusSuccess {
				t.Fatal(st)
			}
			iomgr.FreeIRP(irp)
			if dirty, clean := raw(); dirty || !clean {
				t.Fatalf("after shutdown: dirty %v clean %v", dirty, clean)
			}
			fxFsck(t, x.img)
			// The next change marks it dirty again.
			x.create(`\g`, []byte("y"))
			if dirty, clean := raw(); !dirty || clean {
				t.Fatalf("after a change: dirty %v clean %v", dirty, clean)
			}
			var isDirty uint32
			fo := x.mustOpen(``, iomgr.GenericRead, iomgr.FileOpen, 0)
			if err := mount.FileSystemControl(fo, iomgr.FSCTLIsVolumeDirty, nil, &isDirty, "test"); err != nil || isDirty != 0 {
				t.Fatalf("FSCTL_IS_VOLUME_DIRTY: %v %d", err, isDirty)
			}
			fxClose(fo)
			x.close()
			if dirty, clean := raw(); dirty || !clean {
				t.Fatalf("dismounted: dirty %v clean %v", dirty, clean)
			}
			fxFsck(t, x.img)
		})
	}
}

// fxDirtyState reads the volume's dirty state from the image: the boot
// sector's dirty flag and FAT[1]'s clean bit.
func fxDirtyState(t *testing.T, img string, g ondisk.Geometry) (dirty, clean bool) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fat := b[g.FATOffset(0):]
	clean = fat[3]&0x80 != 0 // FAT16 bit 15
	if g.Type == ondisk.FAT32 {
		clean = fat[7]&0x08 != 0 // FAT32 bit 27
	}
	return ondisk.BootSectorDirty(b), clean
}

// TestNothingWrittenAfterShutdown: after SHUTDOWN the volume stays clean
// until a new change arrives. A lazy write whose timer was armed before
// the shutdown, or a FLUSH_BUFFERS after it, has nothing to write (the
// FAT sector that carries the clean bit was written by the shutdown, and
// is no longer pending), so neither marks the volume dirty again; fsck.fat
// -n, which reports a set dirty bit, finds the image clean. The timer is
// not waited for: its routine is called directly.
func TestNothingWrittenAfterShutdown(t *testing.T) {
	for _, l := range []fxLayout{fxLayouts[1], fxLayouts[2]} {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			v := x.volume()
			v.mu.Lock()
			v.lazyDelay = time.Hour
			v.mu.Unlock()
			shutdown := func() {
				t.Helper()
				cdo := x.fs.controlDevice
				irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorShutdown, cdo, nil, 0)
				if st := iomgr.CallDriverAndWait(cdo, irp).Status; st != iomgr.StatusSuccess {
					t.Fatal(st)
				}
				iomgr.FreeIRP(irp)
			}
			wantClean := func(when string) {
				t.Helper()
				if dirty, clean := fxDirtyState(t, x.img, v.geometry()); dirty || !clean {
					t.Fatalf("%s: boot sector dirty %v, FAT[1] clean %v", when, dirty, clean)
				}
				fxFsck(t, x.img)
			}
			flush := func() {
				t.Helper()
				fo := x.mustOpen(``, iomgr.GenericRead, iomgr.FileOpen, 0)
				if ios := fxCall(fo, iomgr.MajorFlushBuffers, 0, nil); ios.Status != iomgr.StatusSuccess {
					t.Fatal(ios.Status)
				}
				fxClose(fo)
			}
			want := map[string][]byte{}
			for i, after := range []struct {
				what string
				do   func()
			}{{"a lazy write armed before the shutdown", v.lazyWrite}, {"FLUSH_BUFFERS", flush}} {
				// A change marks the volume dirty first (and arms the lazy
				// writer); SHUTDOWN leaves it clean.
				name := fmt.Sprintf(`\f%d`, i)
				want[name] = []byte(name)
				x.create(name, want[name])
				if dirty, clean := fxDirtyState(t, x.img, v.geometry()); !dirty || clean {
					t.Fatalf("after a change: boot sector dirty %v, FAT[1] clean %v", dirty, clean)
				}
				shutdown()
				wantClean("after shutdown")
				v.mu.Lock()
				armed := v.lazyArmed
				v.mu.Unlock()
				if armed {
					t.Fatal("the lazy writer is still armed after shutdown wrote everything")
				}
				after.do()
				wantClean("after " + after.what)
			}
			x.close()
			fxCompareTrees(t, "mtools", fxMtoolsTree(t, x.img), want)
			fxFsck(t, x.img)
		})
	}
}

func TestReadOnlyVolume(t *testing.T) {
	img := fattest.Mkfs(t, fxFAT16.kib, fxFAT16.mkfs...)
	w := fxOpen(t, img, 512, fxOpt{})
	w.create(`\f`, []byte("content"))
	w.close()
	before, _ := os.ReadFile(img)
	x := fxOpen(t, img, 512, fxOpt{readOnly: true})
	if !x.volume().isReadOnly() {
		t.Fatal("not read-only")
	}
	if got := x.readFile(`\f`); string(got) != "content" {
		t.Fatalf("%q", got)
	}
	for _, c := range []struct {
		path   string
		access iomgr.AccessMask
		disp   iomgr.CreateDisposition
	}{{`\f`, iomgr.GenericWrite, iomgr.FileOpen}, {`\new`, iomgr.GenericRead, iomgr.FileCreate},
		{`\f`, iomgr.GenericRead, iomgr.FileOverwrite}, {`\f`, iomgr.Delete, iomgr.FileOpen}} {
		if _, _, err := x.open(c.path, c.access, c.disp, 0); !errors.Is(err, iomgr.StatusMediaWriteProtected) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	fo := x.mustOpen(`\f`, iomgr.GenericRead|iomgr.FileWriteAttributes, iomgr.FileOpen, 0)
	if st := fxSetEOF(fo, 0); st != iomgr.StatusMediaWriteProtected {
		t.Errorf("set EOF: %v", st)
	}
	fxClose(fo)
	var ai iomgr.FileFsAttributeInformation
	r := x.mustOpen(`\`, iomgr.GenericRead, iomgr.FileOpen, 0)
	fxCall(r, iomgr.MajorQueryVolumeInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
		sl.Parameters.QueryVolume.Class = iomgr.FileFsAttributeInformationClass
		irp.SystemBuffer = &ai
	})
	fxClose(r)
	if ai.FileSystemAttributes&fileReadOnlyVolume == 0 {
		t.Error("FILE_READ_ONLY_VOLUME not reported")
	}
	x.close()
	after, _ := os.ReadFile(img)
	if !bytes.Equal(before, after) {
		t.Fatal("a read-only mount changed the image")
	}
}

func TestVerifyVolume(t *testing.T) {
	x := fxNew(t, fxFAT16)
	x.create(`\f`, []byte("x"))
	if err := x.mm.Verify(x.vol, "test"); err != nil {
		t.Fatalf("verify the same volume: %v", err)
	}
	// Another volume in the drive: a new serial number.
	b := make([]byte, 512)
	x.store.ReadAt(b, 0)
	b[39] ^= 0xFF // volume ID of a FAT16 boot sector
	x.store.WriteAt(b, 0)
	if err := x.mm.Verify(x.vol, "test"); !errors.Is(err, iomgr.StatusWrongVolume) {
		t.Fatalf("verify another volume: %v", err)
	}
	if x.vol.VPB().Mounted() {
		t.Fatal("a wrong volume stays mounted")
	}
	x.close()
}

// monitor is a filter attached above the FAT volume device that records
// what passes.
type monitor struct {
	mu     sync.Mutex
	events []string
}

func TestMetadataTravelsThroughTheVolumeStack(t *testing.T) {
	x := fxNew(t, fxFAT16)
	v := x.volume()
	m := &monitor{}
	drv := x.io.CreateDriver(`\FileSystem\Filters\Monitor`)
	flt, _ := x.io.CreateDevice(drv, "", iomgr.DeviceDiskFileSystem, 0)
	lower, err := x.io.AttachDeviceToDeviceStack(flt, v.Device)
	if err != nil {
		t.Fatal(err)
	}
	flt.ClearFlags(iomgr.DeviceInitializing)
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		name := "?"
		if sl.FileObject != nil {
			name = sl.FileObject.FileName
			if sl.FileObject == v.streamFileObject() {
				name = "DIRECT I/O"
			}
		}
		m.mu.Lock()
		m.events = append(m.events, fmt.Sprintf("%v %s paging=%v", sl.Major, name, irp.Flags&iomgr.IRPPagingIO != 0))
		m.mu.Unlock()
		irp.SkipCurrentStackLocation()
		return iomgr.CallDriver(lower, irp)
	})
	drv.FastIO = &iomgr.FastIODispatch{DetachDevice: func(source, target *iomgr.Device) {
		_ = x.io.DetachDevice(target)
		x.io.DeleteDevice(source)
	}}
	x.mkdir(`\seen`)
	x.create(`\seen\file.txt`, []byte("hello"))
	x.close()
	m.mu.Lock()
	defer m.mu.Unlock()
	all := strings.Join(m.events, "\n")
	for _, want := range []string{
		`IRP_MJ_CREATE \seen\file.txt paging=false`,
		`IRP_MJ_WRITE DIRECT I/O paging=true`,
		`IRP_MJ_CLEANUP \seen\file.txt paging=false`,
		`IRP_MJ_FILE_SYSTEM_CONTROL  paging=false`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the monitor did not see %q:\n%s", want, all)
		}
	}
	// The user's write passes once; its data goes below the FSD, never as
	// paging I/O through the volume stack.
	if n := strings.Count(all, `IRP_MJ_WRITE \seen\file.txt`); n != 1 || strings.Contains(all, `\seen\file.txt paging=true`) {
		t.Errorf("file data went through the volume stack:\n%s", all)
	}
}

func TestConcurrentRequests(t *testing.T) {
	x := fxOpen(t, fattest.Mkfs(t, 40000, "-F", "32", "-s", "1"), 512, fxOpt{workers: 4})
	x.mkdir(`\shared`)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				p := fmt.Sprintf(`\shared\g%d file %d`, g, i)
				data := fxContent(p, 1000*(i+1))
				fo, _, err := x.open(p, fxAll, iomgr.FileCreate, 0)
				if err != nil {
					errs <- err
					return
				}
				if st := fxWrite(fo, 0, data); st != iomgr.StatusSuccess {
					errs <- fmt.Errorf("write %s: %w", p, st)
				}
				got, st := fxReadAll(fo)
				if st != iomgr.StatusSuccess || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("read %s: %v, %d bytes", p, st, len(got))
				}
				if i%3 == 0 {
					fxDelete(fo)
				}
				fxClose(fo)
				if _, st := fxList(x.mustOpen(`\shared`, iomgr.FileListDirectory, iomgr.FileOpen, 0), "*"); !st.IsSuccess() {
					errs <- fmt.Errorf("list: %w", st)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The directory handles opened by the listing goroutines are leaked
	// on purpose: a forced dismount still ends the volume.
	if err := x.mm.Dismount(x.vol, mount.DismountOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	_ = x.dd.Close()
	fxFsck(t, x.img)
	if n := len(fxMtoolsTree(t, x.img)); n != 1+8*13 {
		t.Fatalf("%d entries", n)
	}
}

func TestVolumeOpenLockAndSectorIO(t *testing.T) {
	x := fxNew(t, fxFAT16)
	x.create(`\f`, []byte("x"))
	h := x.mustOpen(``, fxRW, iomgr.FileOpen, 0)
	boot, st := fxRead(h, 0, 512)
	if st != iomgr.StatusSuccess || boot[510] != 0x55 || boot[511] != 0xAA {
		t.Fatalf("read sector 0 of the volume: %v", st)
	}
	if st := fxWrite(h, 0, boot); st != iomgr.StatusAccessDenied {
		t.Fatalf("sector write without the lock: %v", st)
	}
	if err := mount.FileSystemControl(h, iomgr.FSCTLLockVolume, nil, nil, "test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.open(`\f`, iomgr.GenericRead, iomgr.FileOpen, 0); !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("open while locked: %v", err)
	}
	if st := fxWrite(h, 0, boot); st != iomgr.StatusSuccess {
		t.Fatalf("sector write with the lock: %v", st)
	}
	if err := mount.FileSystemControl(h, iomgr.FSCTLUnlockVolume, nil, nil, "test"); err != nil {
		t.Fatal(err)
	}
	f := x.mustOpen(`\f`, iomgr.GenericRead, iomgr.FileOpen, 0)
	if err := mount.FileSystemControl(h, iomgr.FSCTLLockVolume, nil, nil, "test"); !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("lock with a file open: %v", err)
	}
	fxClose(f)
	// Cleanup of the locking handle unlocks.
	if err := mount.FileSystemControl(h, iomgr.FSCTLLockVolume, nil, nil, "test"); err != nil {
		t.Fatal(err)
	}
	if err := mount.FileSystemControl(h, iomgr.FSCTLIsVolumeMounted, nil, nil, "test"); err != nil {
		t.Fatal(err)
	}
	fxClose(h)
	if got := x.readFile(`\f`); string(got) != "x" {
		t.Fatalf("%q", got)
	}
	x.close()
	fxFsck(t, x.img)
}

func TestDirectoryCacheIsBounded(t *testing.T) {
	x := fxNew(t, fxLayouts[2])
	const n = maxCachedDirs + 200
	for i := 0; i < n; i++ {
		x.mkdir(fmt.Sprintf(`\d%04d`, i))
		x.create(fmt.Sprintf(`\d%04d\f`, i), []byte(fmt.Sprint(i)))
	}
	v := x.volume()
	for i := 0; i < n; i++ {
		if got := x.readFile(fmt.Sprintf(`\D%04d\F`, i)); string(got) != fmt.Sprint(i) {
			t.Fatalf("%d: %q", i, got)
		}
	}
	v.mu.RLock()
	cached := v.cachedDirs
	v.mu.RUnlock()
	if cached > maxCachedDirs {
		t.Fatalf("%d directories cached", cached)
	}
	x.close()
	fxFsck(t, x.img)
}

// A filter attached to the storage volume after the mount makes its stack
// deeper than the FSD's IRPs were built for: metadata IRPs take the
// short-stack path of iomgr.PassDown; everything still works and the filter
// sees both metadata and file data.
func TestStorageFilterAttachedAfterMount(t *testing.T) {
	x := fxNew(t, fxFAT16)
	x.create(`\before`, []byte("b"))
	drv := x.io.CreateDriver(`\Driver\LateFilter`)
	flt, _ := x.io.CreateDevice(drv, "", iomgr.DeviceDisk, 0)
	lower, err := x.io.AttachDeviceToDeviceStack(flt, x.vol)
	if err != nil {
		t.Fatal(err)
	}
	flt.ClearFlags(iomgr.DeviceInitializing)
	var mu sync.Mutex
	seen := map[string]int{}
	drv.SetDispatchAll(func(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
		sl := irp.CurrentStackLocation()
		mu.Lock()
		seen[fmt.Sprintf("%v paging=%v", sl.Major, irp.Flags&iomgr.IRPPagingIO != 0)]++
		mu.Unlock()
		return iomgr.PassDown(irp, lower)
	})
	data := fxContent("late", 70000)
	x.mkdir(`\after`)
	x.create(`\after\file`, data)
	if got := x.readFile(`\after\file`); !bytes.Equal(got, data) {
		t.Fatal("read back")
	}
	x.close()
	mu.Lock()
	defer mu.Unlock()
	if seen["IRP_MJ_WRITE paging=true"] == 0 || seen["IRP_MJ_WRITE paging=false"] == 0 || seen["IRP_MJ_READ paging=false"] == 0 {
		t.Fatalf("the storage filter saw %v", seen)
	}
	_ = x.io.DetachDevice(x.vol)
	x.io.DeleteDevice(flt)
	fxFsck(t, x.img)
}

func TestSmokeCreateWriteReadList(t *testing.T) {
	layouts := append([]fxLayout{{"fat16-2k-sectors-on-512", 40000, []string{"-F", "16", "-S", "2048"}, 512, ondisk.FAT16}}, fxLayouts...)
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			if got := x.volume().fatType(); got != l.typ {
				t.Fatalf("type %v", got)
			}
			x.mkdir(`\Dir`)
			data := fxContent("a", 100000)
			x.create(`\Dir\Hello World.txt`, data)
			x.create(`\empty.txt`, nil)
			if got := x.readFile(`\dir\HELLO WORLD.TXT`); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes", len(got))
			}
			if got := x.readFile(`\dir\HELLOW~1.TXT`); !bytes.Equal(got, data) {
				t.Fatalf("read back by the short name: %d bytes", len(got))
			}
			if es := x.listDir(`\`); len(es) != 2 {
				t.Fatalf("root: %+v", es)
			}
			x.close()
			fxFsck(t, x.img)
			fxCompareTrees(t, "mtools", fxMtoolsTree(t, x.img),
				map[string][]byte{`\Dir\`: nil, `\Dir\Hello World.txt`: data, `\empty.txt`: {}})
		})
	}
}
