package vdisk_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// fat16Volume opens the FAT16 partition of a new image made by mkfs.fat
// in a System that the test's cleanup closes.
func fat16Volume(t *testing.T) (string, *vdisk.System, *vdisk.Volume) {
	t.Helper()
	path := testworld.FATImage(t, t.TempDir(), "16", 64<<20)
	sys := vdisk.New(vdisk.Options{})
	t.Cleanup(func() { sys.Close() })
	if _, err := sys.AddImage(path, false); err != nil {
		t.Fatal(err)
	}
	v, err := testworld.VolumeNamed(sys, "fat16@1", "test")
	if err != nil {
		t.Fatal(err)
	}
	return path, sys, v
}

// TestOpenFileOSFlags: OpenFile takes the os package's O_* flags, whose
// values differ between platforms (linux/mips, the BSDs and darwin number
// them otherwise than linux/amd64); each flag does what os.OpenFile's
// does. GOARCH=mips64le go test -exec qemu-mips64le runs it where the
// values differ.
func TestOpenFileOSFlags(t *testing.T) {
	t.Parallel()
	path, sys, v := fat16Volume(t)
	if _, err := v.OpenFile("new.txt", os.O_WRONLY); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("O_WRONLY of a missing file: %v, want not exist", err)
	}
	f, err := v.OpenFile("new.txt", os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		t.Fatalf("O_CREATE|O_EXCL: %v", err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(make([]byte, 1)); err == nil {
		t.Fatal("read through an O_WRONLY handle succeeded")
	}
	f.Close()
	if _, err := v.OpenFile("new.txt", os.O_WRONLY|os.O_CREATE|os.O_EXCL); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_CREATE|O_EXCL of an existing file: %v, want exist", err)
	}
	// O_CREATE alone opens the existing file as it is.
	f, err = v.OpenFile("new.txt", os.O_RDWR|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Size() != 5 {
		t.Fatalf("O_CREATE of an existing file: size %d, want 5", fi.Size())
	}
	f.Close()
	f, err = v.OpenFile("new.txt", os.O_WRONLY|os.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(" world"))
	f.Close()
	if b, _ := v.ReadFile("new.txt"); string(b) != "hello world" {
		t.Fatalf("after O_APPEND: %q", b)
	}
	f, err = v.OpenFile("new.txt", os.O_RDWR|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(f); len(b) != 0 {
		t.Fatalf("after O_TRUNC: %q", b)
	}
	f.Close()
	// The volume is clean for fsck.fat afterwards.
	if err := sys.Close(); err != nil {
		t.Fatal(err)
	}
	parts := testsupport.Sfdisk(t, path)
	testsupport.FsckPartition(t, path, parts[0].Start, parts[0].Size)
}

// TestFileStatErrorIsNil: a File.Stat that fails returns a nil
// fs.FileInfo, not a nil *FileInfo inside a non-nil interface, which a
// caller checking fi != nil would take for an answer.
func TestFileStatErrorIsNil(t *testing.T) {
	t.Parallel()
	_, _, v := fat16Volume(t)
	if err := v.WriteFile("a.txt", []byte("a")); err != nil {
		t.Fatal(err)
	}
	f, err := v.OpenFile("a.txt", os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A forced dismount takes the file system away under the open handle.
	if err := v.Dismount(true); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err == nil {
		t.Fatal("Stat after a forced dismount succeeded")
	}
	if fi != nil {
		t.Fatalf("Stat failed (%v) but returned a non-nil fs.FileInfo %#v", err, fi)
	}
}
