package nbd

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// fileDevice serves a host file, as nbdkit's file plugin does, so that the
// two can be compared on equal terms.
type fileDevice struct {
	f    *os.File
	fd   int
	size int64
}

func openFileDevice(t testing.TB, path string) *fileDevice {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	return &fileDevice{f: f, fd: int(f.Fd()), size: st.Size()}
}

func (d *fileDevice) Size() int64 { return d.size }

func (d *fileDevice) ReadAt(_ *Request, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := syscall.Pread(d.fd, p, off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

func (d *fileDevice) WriteAt(r *Request, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := syscall.Pwrite(d.fd, p, off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	if r.FUA() {
		return syscall.Fdatasync(d.fd)
	}
	return nil
}

func (d *fileDevice) Flush(*Request) error { return syscall.Fdatasync(d.fd) }

const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
)

func (d *fileDevice) Trim(_ *Request, off, n int64) error {
	return syscall.Fallocate(d.fd, fallocPunchHole|fallocKeepSize, off, n)
}

func (d *fileDevice) WriteZeroes(r *Request, off, n int64) error {
	mode := uint32(fallocPunchHole | fallocKeepSize)
	if r.NoHole() {
		mode = fallocZeroRange | fallocKeepSize
	}
	err := syscall.Fallocate(d.fd, mode, off, n)
	if err != nil && r.FastZero() {
		return ErrNotFast
	}
	if err != nil {
		// No fallocate support: write zeroes.
		z := make([]byte, min(n, 1<<20))
		for n > 0 {
			k := min(n, int64(len(z)))
			if err := d.WriteAt(r, z[:k], off); err != nil {
				return err
			}
			off, n = off+k, n-k
		}
	}
	return nil
}

func (d *fileDevice) BlockStatus(_ *Request, off, n int64, ext []Extent) ([]Extent, error) {
	const seekData, seekHole = 3, 4
	end := off + n
	for off < end && len(ext) < 256 {
		data, err := syscall.Seek(d.fd, off, seekData)
		if err != nil || data >= end {
			return append(ext, Extent{Length: end - off, Flags: StateHole | StateZero}), nil
		}
		if data > off {
			ext = append(ext, Extent{Length: data - off, Flags: StateHole | StateZero})
		}
		hole, err := syscall.Seek(d.fd, data, seekHole)
		if err != nil {
			return append(ext, Extent{Length: end - data}), nil
		}
		ext = append(ext, Extent{Length: min(hole, end) - data})
		off = hole
	}
	return ext, nil
}

func (d *fileDevice) Cache(*Request, int64, int64) error { return nil }

// benchClient pipelines requests at a fixed depth over one connection.
func benchPipeline(b *testing.B, addr string, cmd Command, size uint32, depth int, structured bool) {
	c := dialConnect(b, addr, "", structured, false)
	nc := c.nc
	nc.SetDeadline(time.Time{})
	msg := make([]byte, 28+int(size))
	hdr := msg[:28]
	send := func(i int) {
		binary.BigEndian.PutUint32(hdr, magicRequest)
		binary.BigEndian.PutUint16(hdr[4:], 0)
		binary.BigEndian.PutUint16(hdr[6:], uint16(cmd))
		binary.BigEndian.PutUint64(hdr[8:], uint64(i))
		binary.BigEndian.PutUint64(hdr[16:], uint64(i%1024)*uint64(size))
		binary.BigEndian.PutUint32(hdr[24:], size)
		if cmd == CmdWrite {
			nc.Write(msg)
		} else {
			nc.Write(hdr)
		}
	}
	rbuf := make([]byte, int(size)+64)
	recv := func() {
		if _, err := io.ReadFull(nc, rbuf[:4]); err != nil {
			b.Fatal(err)
		}
		var n int
		switch binary.BigEndian.Uint32(rbuf) {
		case magicSimple:
			n = 12
			if cmd == CmdRead {
				n += int(size)
			}
		case magicStructure:
			io.ReadFull(nc, rbuf[4:20])
			n = int(binary.BigEndian.Uint32(rbuf[16:]))
		default:
			b.Fatal("bad reply")
		}
		if _, err := io.ReadFull(nc, rbuf[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	inflight := 0
	for i := range b.N {
		if inflight == depth {
			recv()
			inflight--
		}
		send(i)
		inflight++
	}
	for ; inflight > 0; inflight-- {
		recv()
	}
}

func BenchmarkRead4KDepth16(b *testing.B) {
	_, addr := startServer(b, Config{Exports: []Export{{Device: NewMemDevice(64 << 20)}}})
	benchPipeline(b, addr, CmdRead, 4096, 16, true)
}

func BenchmarkWrite4KDepth16(b *testing.B) {
	_, addr := startServer(b, Config{Exports: []Export{{Device: NewMemDevice(64 << 20)}}})
	benchPipeline(b, addr, CmdWrite, 4096, 16, false)
}

func BenchmarkRead1MDepth4(b *testing.B) {
	_, addr := startServer(b, Config{Exports: []Export{{Device: NewMemDevice(1 << 30)}}})
	benchPipeline(b, addr, CmdRead, 1<<20, 4, true)
}

// TestFioVersusNbdkit measures the server with fio's nbd engine against
// nbdkit's file plugin serving the same file, and prints the ratios. It is
// a measurement, not a check of correctness, so it runs only when
// VDISK_NBD_FIO is set (and fio and nbdkit are installed); it fails if the
// server is below VDISK_NBD_FIO_MIN (default 0.9) of nbdkit on any job.
func TestFioVersusNbdkit(t *testing.T) {
	if os.Getenv("VDISK_NBD_FIO") == "" {
		t.Skip("set VDISK_NBD_FIO=1 to compare with nbdkit using fio")
	}
	testsupport.NeedTool(t, "fio")
	testsupport.NeedTool(t, "nbdkit")
	runtime := os.Getenv("VDISK_NBD_FIO_RUNTIME")
	if runtime == "" {
		runtime = "8"
	}
	minRatio := 0.9
	if v, err := strconv.ParseFloat(os.Getenv("VDISK_NBD_FIO_MIN"), 64); err == nil {
		minRatio = v
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	f, _ := os.Create(img)
	chunk := pattern(1<<20, 9)
	for range 512 {
		f.Write(chunk)
	}
	f.Close()

	// Our server.
	_, addr := startServer(t, Config{Exports: []Export{{Device: openFileDevice(t, img)}}})
	// nbdkit's file plugin on the same file.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	kit := exec.Command("nbdkit", "-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", port, "file", img)
	kit.Stderr = os.Stderr
	if err := kit.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kit.Process.Kill(); kit.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal("nbdkit did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}

	jobs := []struct {
		name string
		args []string
	}{
		{"randrw-4k-qd16-4conn", []string{"--rw=randrw", "--bs=4k", "--iodepth=16", "--numjobs=4"}},
		{"randread-4k-qd16-4conn", []string{"--rw=randread", "--bs=4k", "--iodepth=16", "--numjobs=4"}},
		{"randwrite-4k-qd16-4conn", []string{"--rw=randwrite", "--bs=4k", "--iodepth=16", "--numjobs=4"}},
		{"seqread-1m-qd16-4conn", []string{"--rw=read", "--bs=1m", "--iodepth=16", "--numjobs=4"}},
		{"seqwrite-1m-qd16-4conn", []string{"--rw=write", "--bs=1m", "--iodepth=16", "--numjobs=4"}},
	}
	fio := func(uri string, args []string) (iops, mbps float64) {
		all := append([]string{"--name=j", "--ioengine=nbd", "--uri=" + uri, "--size=512m",
			"--time_based", "--runtime=" + runtime, "--group_reporting", "--output-format=json"}, args...)
		out := testsupport.Must(t, "fio", all...)
		var res struct {
			Jobs []struct {
				Read, Write struct {
					IOPS float64 `json:"iops"`
					BW   float64 `json:"bw"` // KiB/s
				}
			} `json:"jobs"`
		}
		if i := strings.IndexByte(out, '{'); i > 0 {
			out = out[i:]
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Jobs) == 0 {
			t.Fatalf("fio output: %v\n%s", err, out)
		}
		j := res.Jobs[0]
		return j.Read.IOPS + j.Write.IOPS, (j.Read.BW + j.Write.BW) / 1024
	}
	var errs []error
	only := os.Getenv("VDISK_NBD_FIO_JOBS") // substring filter on job names
	for _, j := range jobs {
		if only != "" && !strings.Contains(j.name, only) {
			continue
		}
		kitIOPS, kitMB := fio("nbd://127.0.0.1:"+port+"/", j.args)
		ourIOPS, ourMB := fio("nbd://"+addr+"/", j.args)
		ratio := ourIOPS / kitIOPS
		t.Logf("%-24s vdisk %9.0f IOPS %8.1f MiB/s | nbdkit %9.0f IOPS %8.1f MiB/s | ratio %.2f",
			j.name, ourIOPS, ourMB, kitIOPS, kitMB, ratio)
		if ratio < minRatio {
			errs = append(errs, fmt.Errorf("%s: %.2f of nbdkit", j.name, ratio))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}
