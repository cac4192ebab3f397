package disk_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// mdlRead sends an IRP_MJ_READ with the given MDL minor function and returns
// the status and the buffer the IRP ends with.
func mdlRead(dev *iomgr.Device, minor iomgr.MinorFunction, buf []byte, off int64, n uint32) (iomgr.Status, []byte) {
	irp := iomgr.BuildSynchronousFSDRequest(iomgr.MajorRead, dev, buf, off)
	sl := irp.NextStackLocation()
	sl.Minor = minor
	sl.Parameters.Read.Length = n
	st := iomgr.CallDriverAndWait(dev, irp).Status
	out := irp.Buffer
	iomgr.FreeIRP(irp)
	return st, out
}

// An MDL read of an image file lends the file's bytes (sector-aligned but
// not page-aligned offsets included), sees later writes through the same
// pages, and gives the memory back with IRP_MN_COMPLETE_MDL; a memory store
// cannot lend and says so with STATUS_NOT_SUPPORTED.
func TestMDLReadLendsImageBytesAndTakesThemBack(t *testing.T) {
	forWorkers(t, func(t *testing.T, workers int) {
		path := filepath.Join(t.TempDir(), "img")
		want := pattern(diskSize, 9)
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := disk.OpenFile(path, false)
		if err != nil {
			t.Fatal(err)
		}
		m := iomgr.NewManager()
		drv := disk.NewDriver(m, disk.Options{Workers: workers})
		t.Cleanup(func() { drv.Close() })
		dev, err := drv.AddDisk(st, 512, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			off int64
			n   uint32
		}{{0, 4096}, {512, 1 << 20}, {3 << 20, 1 << 20}, {diskSize - 512, 512}} {
			s, lent := mdlRead(dev, iomgr.MinorMDL, nil, c.off, c.n)
			if s != iomgr.StatusSuccess || !bytes.Equal(lent, want[c.off:c.off+int64(c.n)]) {
				t.Fatalf("MDL read %d+%d: %v, %d bytes, equal %v", c.off, c.n, s, len(lent), bytes.Equal(lent, want[c.off:c.off+int64(c.n)]))
			}
			// A write through the driver shows in the lent pages: they are
			// the page cache's, not a copy.
			if ios := transfer(dev, iomgr.MajorWrite, pattern(512, 1), c.off, 0); ios.Status != iomgr.StatusSuccess {
				t.Fatal(ios.Status)
			}
			if !bytes.Equal(lent[:512], pattern(512, 1)) {
				t.Fatalf("MDL read %d: a later write does not show in the lent memory", c.off)
			}
			copy(want[c.off:], pattern(512, 1))
			if s, _ := mdlRead(dev, iomgr.MinorCompleteMDL, lent, c.off, c.n); s != iomgr.StatusSuccess {
				t.Fatalf("IRP_MN_COMPLETE_MDL: %v", s)
			}
		}
		// Out of range and misaligned MDL reads fail like plain reads.
		if s, _ := mdlRead(dev, iomgr.MinorMDL, nil, diskSize-512, 1024); s != iomgr.StatusInvalidParameter {
			t.Fatalf("MDL read past the end: %v", s)
		}
		if s, _ := mdlRead(dev, iomgr.MinorMDL, nil, 100, 512); s != iomgr.StatusInvalidParameter {
			t.Fatalf("misaligned MDL read: %v", s)
		}
	})
	_, _, mem, _ := newDisk(t, 0, false)
	if s, _ := mdlRead(mem, iomgr.MinorMDL, nil, 0, 4096); s != iomgr.StatusNotSupported {
		t.Fatalf("MDL read of a memory store: %v, want STATUS_NOT_SUPPORTED", s)
	}
}

// A file truncated behind the store's back is not lent (a mapping past the
// end would fault when touched): the caller reads normally instead.
func TestFileStoreDoesNotLendPastTheFilesEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(path, pattern(1<<20, 2), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := disk.OpenFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := os.Truncate(path, 512<<10); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Lend(256<<10, 512<<10); err != disk.ErrCannotLend {
		t.Fatalf("Lend past the file's end: %d bytes, %v", len(b), err)
	}
	b, err := st.Lend(0, 256<<10)
	if err != nil || !bytes.Equal(b, pattern(1<<20, 2)[:256<<10]) {
		t.Fatalf("Lend within the file: %v", err)
	}
	if err := st.Return(b, 0); err != nil {
		t.Fatal(err)
	}
}
