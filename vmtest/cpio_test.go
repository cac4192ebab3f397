package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"testing"
)

// newc writes a cpio archive in the "new ASCII" format the kernel unpacks
// as an initramfs (Documentation/driver-api/early-userspace/buffer-format).
// Parent directories are created on demand; entries keep the order given.
type newc struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newNewc(w io.Writer) *newc {
	return &newc{w: bufio.NewWriter(w), ino: 1, dirs: map[string]bool{".": true, "/": true, "": true}}
}

func (c *newc) header(name string, mode, size, rmajor, rminor uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	// ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
	// rdevminor namesize check; mtime 0 keeps the archive reproducible.
	_, c.err = fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if c.err == nil {
		_, c.err = c.w.WriteString(name + "\x00")
	}
	c.pad(110 + len(name) + 1)
}

func (c *newc) pad(n int) {
	if c.err == nil && n%4 != 0 {
		_, c.err = c.w.Write(make([]byte, 4-n%4))
	}
}

// mkdirAll adds name and its missing parents as directories.
func (c *newc) mkdirAll(name string) {
	name = strings.TrimPrefix(path.Clean(name), "/")
	if c.dirs[name] {
		return
	}
	c.mkdirAll(path.Dir(name))
	c.dirs[name] = true
	c.header(name, 0o040755, 0, 0, 0)
}

// file adds a regular file with the given permission bits.
func (c *newc) file(name string, perm uint32, data []byte) {
	name = strings.TrimPrefix(path.Clean(name), "/")
	c.mkdirAll(path.Dir(name))
	c.header(name, 0o100000|perm, uint32(len(data)), 0, 0)
	if c.err == nil {
		_, c.err = c.w.Write(data)
	}
	c.pad(len(data))
}

// hostFile adds a copy of a host file (symbolic links followed).
func (c *newc) hostFile(name, src string, perm uint32) {
	data, err := os.ReadFile(src)
	if err != nil {
		if c.err == nil {
			c.err = err
		}
		return
	}
	c.file(name, perm, data)
}

// charDev adds a character device node.
func (c *newc) charDev(name string, major, minor uint32) {
	name = strings.TrimPrefix(path.Clean(name), "/")
	c.mkdirAll(path.Dir(name))
	c.header(name, 0o020600, 0, major, minor)
}

// close writes the trailer and flushes.
func (c *newc) close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return c.err
}

// TestNewc checks the archive writer against busybox cpio, which reads the
// format independently (the kernel is the other reader, in TestVM).
func TestNewc(t *testing.T) {
	if os.Getenv("VDISK_VM") == "0" {
		t.Skip("VDISK_VM=0: VM tests skipped on request")
	}
	busybox, err := findBusybox()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := os.Create(dir + "/a.cpio")
	if err != nil {
		t.Fatal(err)
	}
	c := newNewc(f)
	c.file("/bin/x", 0o755, []byte("abc"))
	c.file("etc/deep/y.conf", 0o644, []byte("12345"))
	c.file("empty", 0o644, nil)
	c.charDev("/dev/console", 5, 1)
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(busybox, "cpio", "-t", "-F", dir+"/a.cpio").Output()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	sort.Strings(got)
	want := []string{"bin", "bin/x", "dev", "dev/console", "empty", "etc", "etc/deep", "etc/deep/y.conf"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("archive lists %q, want %q", got, want)
	}
	x := exec.Command(busybox, "cpio", "-i", "-d", "-F", dir+"/a.cpio", "etc/deep/y.conf")
	x.Dir = t.TempDir()
	if out, err := x.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(x.Dir + "/etc/deep/y.conf"); err != nil || string(b) != "12345" {
		t.Errorf("extracted etc/deep/y.conf: %q, %v", b, err)
	}
}
