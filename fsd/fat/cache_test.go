package fat

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// fxOnDisk reads n bytes of f's data at file offset 0 straight from the
// image file, past the whole stack: what a crash would leave.
func fxOnDisk(t *testing.T, x *fxVol, path string, n int) []byte {
	t.Helper()
	v := x.volume()
	v.mu.RLock()
	d, name, err := v.walkParent(v.root, strings.TrimPrefix(path, `\`))
	var lcn uint32
	if err == nil {
		lcn = d.dir.lookup(name).short.StartCluster(v.geo.Type)
	}
	v.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.Open(x.img)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	b := make([]byte, n)
	if _, err := img.ReadAt(b, v.geo.ClusterOffset(lcn)); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCachedWritesReachTheDiskAtLastCleanup: a write is held in the file
// data cache (the image's clusters are still zero) until the last
// handle's cleanup writes it back; then mtools reads it from the image
// while the volume is still mounted, and fsck.fat finds nothing wrong.
func TestCachedWritesReachTheDiskAtLastCleanup(t *testing.T) {
	for _, l := range fxLayouts {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			// The lazy writer must not come between the steps.
			v := x.volume()
			v.mu.Lock()
			v.lazyDelay = time.Hour
			v.mu.Unlock()
			data := fxContent("cleanup", 100000)
			fo := x.mustOpen(`\a.bin`, fxRW, iomgr.FileCreate, 0)
			if st := fxWrite(fo, 0, data); st != iomgr.StatusSuccess {
				t.Fatal(st)
			}
			other := x.mustOpen(`\a.bin`, iomgr.GenericRead, iomgr.FileOpen, 0)
			if got := fxOnDisk(t, x, `\a.bin`, 4096); !bytes.Equal(got, make([]byte, 4096)) {
				t.Fatal("the write went to the disk at once: nothing is cached")
			}
			fxClose(fo)
			if got := fxOnDisk(t, x, `\a.bin`, 4096); !bytes.Equal(got, make([]byte, 4096)) {
				t.Fatal("written back while another handle is open")
			}
			fxClose(other)
			if got := fxOnDisk(t, x, `\a.bin`, 4096); !bytes.Equal(got, data[:4096]) {
				t.Fatal("not written back at the last cleanup")
			}
			// The lazy writer's turn (its timer's routine, called here
			// rather than waited for) writes the metadata.
			v.lazyWrite()
			fxCompareTrees(t, "mtools after the lazy writer", fxMtoolsTree(t, x.img), map[string][]byte{`\a.bin`: data})
			x.close()
			fxFsck(t, x.img)
		})
	}
}

// TestFlushWritesCachedDataWithAHandleOpen: FLUSH_BUFFERS writes cached
// data and the metadata that describes it, so mtools sees the file while
// it is still open.
func TestFlushWritesCachedDataWithAHandleOpen(t *testing.T) {
	x := fxNew(t, fxLayouts[2])
	data := fxContent("flush", 70000)
	fo := x.mustOpen(`\f.bin`, fxRW, iomgr.FileCreate, 0)
	defer fxClose(fo)
	if st := fxWrite(fo, 0, data); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	if ios := fxCall(fo, iomgr.MajorFlushBuffers, 0, nil); ios.Status != iomgr.StatusSuccess {
		t.Fatal(ios.Status)
	}
	fxCompareTrees(t, "mtools after a flush", fxMtoolsTree(t, x.img), map[string][]byte{`\f.bin`: data})
}

// TestSmallCacheEvictsAndKeepsEveryByte: with a cache of four pages, a
// file much larger than the cache is written in odd pieces, overwritten in
// the middle, cut, extended and written past its end (a gap); every
// byte read back through the stack, and then by mtools from the image,
// matches a model; fsck.fat is clean.
func TestSmallCacheEvictsAndKeepsEveryByte(t *testing.T) {
	for _, l := range fxLayouts[1:] {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			v := x.volume()
			v.cache.mu.Lock()
			v.cache.setLimit(4)
			v.cache.mu.Unlock()
			var model []byte
			write := func(fo *iomgr.FileObject, off int, data []byte) {
				t.Helper()
				if st := fxWrite(fo, int64(off), data); st != iomgr.StatusSuccess {
					t.Fatalf("write %d bytes at %d: %v", len(data), off, st)
				}
				if end := off + len(data); end > len(model) {
					model = append(model, make([]byte, end-len(model))...)
				}
				copy(model[off:], data)
			}
			fo := x.mustOpen(`\big.bin`, fxRW, iomgr.FileCreate, 0)
			src := fxContent("evict", 1<<20)
			for off := 0; off < len(src); off += 3001 {
				write(fo, off, src[off:min(off+3001, len(src))])
			}
			write(fo, 100000, fxContent("middle", 200000))
			if st := fxSetEOF(fo, 777777); st != iomgr.StatusSuccess {
				t.Fatal(st)
			}
			model = model[:777777]
			if st := fxSetEOF(fo, 800000); st != iomgr.StatusSuccess {
				t.Fatal(st)
			}
			model = append(model, make([]byte, 800000-777777)...)
			write(fo, 900001, fxContent("past the end", 5000))
			got, st := fxReadAll(fo)
			if st != iomgr.StatusSuccess || !bytes.Equal(got, model) {
				t.Fatalf("read back through the stack: %v, %d bytes, equal %v", st, len(got), bytes.Equal(got, model))
			}
			fxClose(fo)
			x.close()
			fxFsck(t, x.img)
			fxCompareTrees(t, "mtools", fxMtoolsTree(t, x.img), map[string][]byte{`\big.bin`: model})
		})
	}
}

// TestFreedClustersNeverGetStalePages: a file's cached, unwritten pages
// are dropped with its clusters when it is cut and when it is deleted, so
// the file that takes those clusters next keeps its own bytes.
func TestFreedClustersNeverGetStalePages(t *testing.T) {
	x := fxNew(t, fxLayouts[1])
	a := x.mustOpen(`\a.bin`, fxAll, iomgr.FileCreate, 0)
	if st := fxWrite(a, 0, fxContent("a", 300000)); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	d := x.mustOpen(`\d.bin`, fxAll, iomgr.FileCreate, 0)
	if st := fxWrite(d, 0, fxContent("d", 300000)); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	if st := fxSetEOF(a, 10); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	if st := fxDelete(d); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	fxClose(d)
	b := fxContent("b", 600000)
	x.create(`\b.bin`, b)
	fxClose(a)
	x.close()
	fxFsck(t, x.img)
	fxCompareTrees(t, "mtools", fxMtoolsTree(t, x.img), map[string][]byte{`\a.bin`: fxContent("a", 10), `\b.bin`: b})
}

// fxFast returns the fast I/O table at the top of fo's volume stack.
func fxFast(fo *iomgr.FileObject) (*iomgr.Device, *iomgr.FastIODispatch) {
	dev := iomgr.RelatedDevice(fo)
	return dev, dev.Driver.FastIO
}

// TestFastIOServesFromTheCacheOrSaysNotPossible: the fast I/O routines
// serve reads of cached pages, writes within the file's clusters and the
// basic and standard information, with the results of the IRP path; they
// answer "not possible" for pages not cached, writes that need clusters,
// and a handle without read access.
func TestFastIOServesFromTheCacheOrSaysNotPossible(t *testing.T) {
	x := fxNew(t, fxLayouts[1]) // 1 KiB clusters
	data := fxContent("fast", 10000)
	fo := x.mustOpen(`\f.bin`, fxRW, iomgr.FileCreate, 0)
	if st := fxWrite(fo, 0, data); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	dev, fio := fxFast(fo)
	var ios iomgr.IOStatusBlock
	buf := make([]byte, 10000)
	if !fio.Read(dev, fo, 0, buf, true, &ios) || ios.Status != iomgr.StatusSuccess || ios.Information != 10000 || !bytes.Equal(buf, data) {
		t.Fatalf("fast read of cached pages: %v %d", ios.Status, ios.Information)
	}
	if !fio.Read(dev, fo, 20000, buf, true, &ios) || ios.Status != iomgr.StatusEndOfFile {
		t.Fatalf("fast read past the end: %v", ios.Status)
	}
	// 10,000 bytes have 10 clusters: 240 more bytes fit, one more does not.
	tail := fxContent("tail", 240)
	if !fio.Write(dev, fo, 10000, tail, true, &ios) || ios.Status != iomgr.StatusSuccess || ios.Information != 240 {
		t.Fatalf("fast write within the clusters: %v %d", ios.Status, ios.Information)
	}
	if fio.Write(dev, fo, 10240, []byte{1}, true, &ios) {
		t.Fatal("fast write that needs a cluster was served")
	}
	data = append(data, tail...)
	var fb, ib iomgr.FileBasicInformation
	var fs, is iomgr.FileStandardInformation
	if !fio.QueryBasicInfo(dev, fo, true, &fb, &ios) || !fio.QueryStandardInfo(dev, fo, true, &fs, &ios) {
		t.Fatal("fast queries not served")
	}
	fxQuery(fo, iomgr.FileBasicInformationClass, &ib)
	fxQuery(fo, iomgr.FileStandardInformationClass, &is)
	if fb != ib || fs != is || fs.EndOfFile != 10240 || fs.AllocationSize != 10240 {
		t.Fatalf("fast queries %+v %+v, IRP %+v %+v", fb, fs, ib, is)
	}
	fxClose(fo)

	// A new open finds nothing cached: the first read takes the IRP path,
	// which loads the page; the second is served fast.
	fo = x.mustOpen(`\f.bin`, iomgr.GenericRead, iomgr.FileOpen, 0)
	defer fxClose(fo)
	if fio.Read(dev, fo, 0, buf, true, &ios) {
		t.Fatal("fast read of a page not cached was served")
	}
	if got, st := fxRead(fo, 0, 100); st != iomgr.StatusSuccess || !bytes.Equal(got, data[:100]) {
		t.Fatalf("IRP read: %v", st)
	}
	if !fio.Read(dev, fo, 5000, buf[:5240], true, &ios) || ios.Information != 5240 || !bytes.Equal(buf[:5240], data[5000:]) {
		t.Fatalf("fast read after the IRP loaded the page: %v %d", ios.Status, ios.Information)
	}
	if fio.Write(dev, fo, 0, []byte{1}, true, &ios) {
		t.Fatal("fast write on a read-only handle was served")
	}
	attrs := x.mustOpen(`\f.bin`, iomgr.FileReadAttributes, iomgr.FileOpen, 0)
	defer fxClose(attrs)
	if fio.Read(dev, attrs, 0, buf, true, &ios) {
		t.Fatal("fast read without read access was served")
	}
	if !fio.QueryStandardInfo(dev, attrs, true, &fs, &ios) || fs.EndOfFile != 10240 {
		t.Fatalf("fast standard query on an attributes handle: %+v", fs)
	}
	if ios := fxCall(fo, iomgr.MajorFlushBuffers, 0, nil); ios.Status != iomgr.StatusSuccess {
		t.Fatal(ios.Status)
	}
	fxCompareTrees(t, "mtools", fxMtoolsTree(t, x.img), map[string][]byte{`\f.bin`: data})
}

// TestFilesStayContiguous: files written in small pieces (so each write
// allocates a few clusters), one after the other, also after a delete
// left a hole among them, each take one run of clusters, as mtools'
// mshowfat sees in the FAT.
func TestFilesStayContiguous(t *testing.T) {
	fattest.Need(t, "mshowfat")
	x := fxNew(t, fxLayouts[2]) // 512-byte clusters
	write := func(name string, n int) []byte {
		data := fxContent(name, n)
		fo := x.mustOpen(`\`+name, fxRW, iomgr.FileCreate, 0)
		for off := 0; off < n; off += 3001 {
			if st := fxWrite(fo, int64(off), data[off:min(off+3001, n)]); st != iomgr.StatusSuccess {
				t.Fatal(st)
			}
		}
		fxClose(fo)
		return data
	}
	want := map[string][]byte{}
	for _, f := range []struct {
		name string
		size int
	}{{"a.bin", 100000}, {"hole.bin", 20000}, {"b.bin", 300000}} {
		want[`\`+f.name] = write(f.name, f.size)
	}
	fo := x.mustOpen(`\hole.bin`, fxAll, iomgr.FileOpen, 0)
	if st := fxDelete(fo); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	fxClose(fo)
	delete(want, `\hole.bin`)
	want[`\c.bin`] = write("c.bin", 150000) // larger than the hole
	want[`\d.bin`] = write("d.bin", 10000)  // smaller
	x.close()
	fxFsck(t, x.img)
	fxCompareTrees(t, "mtools", fxMtoolsTree(t, x.img), want)
	for p := range want {
		out := fattest.Must(t, "mshowfat", "-i", x.img, "::"+strings.ReplaceAll(p, `\`, "/"))
		if strings.Count(out, "<") != 1 {
			t.Errorf("%s is in more than one run of clusters: %s", p, out)
		}
	}
}

// TestSectorReadsAndNonCachedWritesSeeTheDisk: a non-cached WRITE is on
// the image when it completes, and sector I/O on the volume (DASD) reads
// what cached writes of an open file changed: the cache writes them back
// first.
func TestSectorReadsAndNonCachedWritesSeeTheDisk(t *testing.T) {
	x := fxNew(t, fxLayouts[1])
	v := x.volume()
	v.mu.Lock()
	v.lazyDelay = time.Hour
	v.mu.Unlock()
	data := fxContent("dasd", 3000)
	fo := x.mustOpen(`\n.bin`, fxRW, iomgr.FileCreate, 0)
	defer fxClose(fo)
	dev := iomgr.RelatedDevice(fo)
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorWrite, dev, data[:1000], 0)
	irp.Flags |= iomgr.IRPNoCache
	irp.FileObject = fo
	irp.Requestor = "test"
	irp.NextStackLocation().FileObject = fo
	if st := iomgr.CallDriverAndWait(dev, irp).Status; st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	iomgr.FreeIRP(irp)
	if got := fxOnDisk(t, x, `\n.bin`, 1000); !bytes.Equal(got, data[:1000]) {
		t.Fatal("a non-cached write is not on the disk when it completes")
	}
	if st := fxWrite(fo, 1000, data[1000:]); st != iomgr.StatusSuccess {
		t.Fatal(st)
	}
	if got := fxOnDisk(t, x, `\n.bin`, 3000); bytes.Equal(got, data) {
		t.Fatal("the cached write went to the disk at once")
	}
	v.mu.RLock()
	lcn, _ := v.root.dir.lookup("n.bin").fcb.ext.lookup(0)
	v.mu.RUnlock()
	vol := x.mustOpen(``, iomgr.GenericRead, iomgr.FileOpen, 0)
	defer fxClose(vol)
	sectors, st := fxRead(vol, v.geo.ClusterOffset(lcn), 3072)
	if st != iomgr.StatusSuccess || !bytes.Equal(sectors[:3000], data) {
		t.Fatalf("sector read of the file's clusters: %v, equal %v", st, bytes.Equal(sectors[:3000], data))
	}
}

// TestSequentialReadsAreMostlyFastIO: a file read in order, fast I/O
// first and the IRP when it is not possible (as the I/O manager's callers
// do), reads what mtools reads from the image; the IRP path's read-ahead
// makes most of the reads fast.
func TestSequentialReadsAreMostlyFastIO(t *testing.T) {
	for _, l := range fxLayouts[1:] {
		t.Run(l.name, func(t *testing.T) {
			x := fxNew(t, l)
			x.create(`\seq.bin`, fxContent("seq", 3<<20+12345))
			x.close()
			want := fxMtoolsTree(t, x.img)[`\seq.bin`]
			x = fxOpen(t, x.img, l.sectorSize, fxOpt{})
			fo := x.mustOpen(`\seq.bin`, iomgr.GenericRead, iomgr.FileOpen, 0)
			defer fxClose(fo)
			dev, fio := fxFast(fo)
			var got []byte
			fast, irps := 0, 0
			buf := make([]byte, 20000)
			for {
				var ios iomgr.IOStatusBlock
				if fio.Read(dev, fo, int64(len(got)), buf, true, &ios) {
					fast++
				} else {
					irps++
					n, st := fxIO(fo, iomgr.MajorRead, buf, int64(len(got)))
					ios = iomgr.IOStatusBlock{Status: st, Information: uint64(n)}
				}
				if ios.Status == iomgr.StatusEndOfFile {
					break
				}
				if ios.Status != iomgr.StatusSuccess {
					t.Fatal(ios.Status)
				}
				got = append(got, buf[:ios.Information]...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, mtools %d, equal %v", len(got), len(want), bytes.Equal(got, want))
			}
			if fast < 3*irps {
				t.Errorf("%d fast reads, %d IRPs: read-ahead does not work", fast, irps)
			}
		})
	}
}
