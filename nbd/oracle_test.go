package nbd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// These tests check the server against real NBD clients: libnbd's nbdinfo
// and nbdcopy (and its Python binding), and qemu-img. Each is skipped, with
// the reason, when its tool is not installed (Debian: libnbd-bin,
// python3-libnbd, qemu-utils).

type nbdinfoJSON struct {
	Protocol   string `json:"protocol"`
	TLS        bool   `json:"TLS"`
	Structured bool   `json:"structured"`
	Exports    []struct {
		Name         string   `json:"export-name"`
		Description  string   `json:"description"`
		Contexts     []string `json:"contexts"`
		ReadOnly     bool     `json:"is_read_only"`
		CanCache     bool     `json:"can_cache"`
		CanDF        bool     `json:"can_df"`
		CanFastZero  bool     `json:"can_fast_zero"`
		CanFlush     bool     `json:"can_flush"`
		CanFUA       bool     `json:"can_fua"`
		CanMultiConn bool     `json:"can_multi_conn"`
		CanTrim      bool     `json:"can_trim"`
		CanZero      bool     `json:"can_zero"`
		MinBlock     uint32   `json:"block_size_minimum"`
		PrefBlock    uint32   `json:"block_size_preferred"`
		MaxBlock     uint32   `json:"block_size_maximum"`
		Size         int64    `json:"export-size"`
	} `json:"exports"`
}

func nbdinfo(t *testing.T, args ...string) nbdinfoJSON {
	t.Helper()
	out := testsupport.Must(t, "nbdinfo", append([]string{"--json"}, args...)...)
	var j nbdinfoJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("nbdinfo output: %v\n%s", err, out)
	}
	return j
}

// oracleServer serves several exports on TCP and a unix socket.
func oracleServer(t *testing.T, cfg Config) (tcpAddr, sock string) {
	t.Helper()
	s, addr := startServer(t, cfg)
	sock = filepath.Join(t.TempDir(), "nbd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	return addr, sock
}

func TestOracleNbdinfoList(t *testing.T) {
	testsupport.NeedTool(t, "nbdinfo")
	cfg, _ := threeExports()
	cfg.Exports = append(cfg.Exports, Export{Name: "disk@1", Description: "partition 1", Device: NewMemDevice(512 << 10), MinBlock: 512})
	addr, sock := oracleServer(t, cfg)
	for _, uri := range []string{"nbd://" + addr, "nbd+unix:///?socket=" + sock} {
		j := nbdinfo(t, "--list", uri)
		if j.Protocol != "newstyle-fixed" || !j.Structured {
			t.Errorf("%s: protocol %q structured %v", uri, j.Protocol, j.Structured)
		}
		var got []string
		for _, e := range j.Exports {
			got = append(got, fmt.Sprintf("%q:%q:%d:ro=%v:min=%d", e.Name, e.Description, e.Size, e.ReadOnly, e.MinBlock))
		}
		want := []string{
			`"":"default export":1048576:ro=false:min=1`,
			`"disk":"whole disk":4194304:ro=false:min=1`,
			`"ro":"":65536:ro=true:min=1`,
			`"disk@1":"partition 1":524288:ro=false:min=512`,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: nbdinfo --list:\n%s\nwant\n%s", uri, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestOracleNbdinfoFlags(t *testing.T) {
	testsupport.NeedTool(t, "nbdinfo")
	cfg, _ := threeExports()
	addr, sock := oracleServer(t, cfg)
	for _, uri := range []string{
		"nbd://" + addr + "/", "nbd://" + addr + "/disk", "nbd://" + addr + "/ro",
		"nbd+unix:///disk?socket=" + sock, "nbd+unix:///ro?socket=" + sock,
	} {
		j := nbdinfo(t, uri)
		if len(j.Exports) != 1 {
			t.Fatalf("%s: %d exports", uri, len(j.Exports))
		}
		e := j.Exports[0]
		ro := strings.Contains(uri, "/ro")
		writeFlags := !ro
		if e.ReadOnly != ro || e.CanFUA != writeFlags || e.CanTrim != writeFlags || e.CanZero != writeFlags || e.CanFastZero != writeFlags {
			t.Errorf("%s: write-class flags %+v", uri, e)
		}
		if !e.CanFlush || !e.CanMultiConn || !e.CanCache || !e.CanDF {
			t.Errorf("%s: flags %+v", uri, e)
		}
		if fmt.Sprint(e.Contexts) != "[base:allocation]" {
			t.Errorf("%s: contexts %v", uri, e.Contexts)
		}
		if e.PrefBlock != 4096 || e.MaxBlock != 32<<20 {
			t.Errorf("%s: block sizes %d/%d", uri, e.PrefBlock, e.MaxBlock)
		}
	}
}

func TestOracleNbdinfoMap(t *testing.T) {
	testsupport.NeedTool(t, "nbdinfo")
	d := NewMemDevice(4 << 20)
	// data [64K,192K), hole, data [1M,1M+4K), hole, data in the last 8K
	d.WriteAt(nil, pattern(128<<10, 1), 64<<10)
	d.WriteAt(nil, pattern(4096, 2), 1<<20)
	d.WriteAt(nil, pattern(8192, 3), 4<<20-8192)
	addr, sock := oracleServer(t, Config{Exports: []Export{{Name: "m", Device: d}}})
	type ext struct {
		Offset int64 `json:"offset"`
		Length int64 `json:"length"`
		Type   int   `json:"type"`
	}
	want := []ext{
		{0, 64 << 10, 3}, {64 << 10, 128 << 10, 0}, {192 << 10, 1<<20 - 192<<10, 3},
		{1 << 20, 4096, 0}, {1<<20 + 4096, 3<<20 - 4096 - 8192, 3}, {4<<20 - 8192, 8192, 0},
	}
	for _, uri := range []string{"nbd://" + addr + "/m", "nbd+unix:///m?socket=" + sock} {
		out := testsupport.Must(t, "nbdinfo", "--map", "--json", uri)
		var got []ext
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s map:\n%v\nwant\n%v", uri, got, want)
		}
	}
}

// testImage writes a file of random data with zero runs (so that copies
// exercise zeroing and sparseness) and returns its contents.
func testImage(t *testing.T, path string, size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, size)
	for off := 0; off < size; off += 64 << 10 {
		if rng.IntN(3) == 0 {
			continue // leave 64 KiB of zeroes
		}
		for i := off; i < off+64<<10 && i < size; i += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && i+k < size; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOracleNbdcopyRoundTrip(t *testing.T) {
	testsupport.NeedTool(t, "nbdcopy")
	const size = 24 << 20
	d := NewMemDevice(size)
	d.WriteAt(nil, bytes.Repeat([]byte{0xaa}, size), 0) // stale data the copy must overwrite, zeroes included
	addr, sock := oracleServer(t, Config{Exports: []Export{{Name: "disk", Device: d}}})
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	want := testImage(t, src, size, 1)

	for _, uri := range []string{"nbd://" + addr + "/disk", "nbd+unix:///disk?socket=" + sock} {
		testsupport.Must(t, "nbdcopy", "--flush", src, uri)
		got := make([]byte, size)
		d.ReadAt(nil, got, 0)
		eqBytes(t, "device after nbdcopy in", got, want)

		out := filepath.Join(dir, "out.img")
		os.Remove(out)
		testsupport.Must(t, "nbdcopy", uri, out)
		back, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		eqBytes(t, "file after nbdcopy out", back, want)
		d.WriteAt(nil, bytes.Repeat([]byte{0x55}, size), 0)
	}
	// Several connections, small requests, many in flight.
	testsupport.Must(t, "nbdcopy", "--connections=4", "--requests=32", "--request-size=4096", src, "nbd://"+addr+"/disk")
	got := make([]byte, size)
	d.ReadAt(nil, got, 0)
	eqBytes(t, "device after multi-conn copy", got, want)
}

func TestOracleQemuImgCompare(t *testing.T) {
	testsupport.NeedTool(t, "qemu-img")
	const size = 16 << 20
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.img")
	want := testImage(t, ref, size, 7)
	d := NewMemDevice(size)
	d.WriteAt(nil, want, 0)
	addr, sock := oracleServer(t, Config{Exports: []Export{{Name: "disk", Device: d}, {Name: "", Device: d, ReadOnly: true}}})
	for _, uri := range []string{"nbd://" + addr + "/disk", "nbd://" + addr, "nbd+unix:///disk?socket=" + sock} {
		if r := testsupport.Run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", ref, uri); r.Code != 0 {
			t.Fatalf("qemu-img compare %s: exit status %d\n%s", uri, r.Code, r.Output())
		}
	}
	// qemu-img writes through the server too.
	src := filepath.Join(dir, "src.img")
	want2 := testImage(t, src, size, 8)
	testsupport.Must(t, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, "nbd://"+addr+"/disk")
	got := make([]byte, size)
	d.ReadAt(nil, got, 0)
	eqBytes(t, "device after qemu-img convert", got, want2)
	// A single differing byte must be noticed (the oracle is not vacuous).
	d.WriteAt(nil, []byte{want2[5<<20] ^ 1}, 5<<20)
	r := testsupport.Run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, "nbd://"+addr+"/disk")
	if r.Code == 0 || !strings.Contains(r.Output(), "mismatch at offset 5242880") {
		t.Fatalf("qemu-img compare missed a difference: exit status %d\n%s", r.Code, r.Output())
	}
}

// libnbdScript drives the commands nbdinfo and nbdcopy do not use, through
// libnbd's Python binding, with the client's own checks relaxed so the
// server's answers are what is tested.
const libnbdScript = `
import errno, sys
import nbd

rw, ro, partial = sys.argv[1], sys.argv[2], sys.argv[3]
h = nbd.NBD()
h.add_meta_context("base:allocation")
h.connect_uri(rw)
for f in ("can_fast_zero", "can_trim", "can_zero", "can_df", "can_cache", "can_flush", "can_fua", "can_multi_conn"):
    assert getattr(h, f)(), f
assert not h.is_read_only()
size = h.get_size()
buf = bytes((i * 7) & 0xff for i in range(1 << 20))

h.pwrite(buf, 0, nbd.CMD_FLAG_FUA)
assert h.pread(len(buf), 0) == buf

chunks = []
def chunk(subbuf, offset, status, err):
    chunks.append((offset, len(subbuf), status))
    return 0
h.pread_structured(65536, 4096, chunk, nbd.CMD_FLAG_DF)
assert chunks == [(4096, 65536, nbd.READ_DATA)], chunks

h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO)
assert h.pread(65536, 0) == bytes(65536)
h.zero(65536, 65536, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(65536, 65536) == bytes(65536)
h.trim(131072, 262144)
h.flush()
h.cache(65536, 0)

exts = []
def bs(ctx, offset, entries, err):
    exts.append((ctx, offset, list(entries)))
    return 0
h.block_status(1 << 20, 0, bs)
assert exts[0][0] == "base:allocation", exts
e = exts[0][2]
# hole+zero (fast zero), data (no-hole zero, then written data), hole+zero
# (trim), data
assert e == [65536, 3, 196608, 0, 131072, 3, 655360, 0], e
exts.clear()
h.block_status(1 << 20, 0, bs, nbd.CMD_FLAG_REQ_ONE)
assert exts[0][2] == [65536, 3], exts

h.set_strict_mode(0)
def expect(errnum, fn, *args):
    try:
        fn(*args)
    except nbd.Error as ex:
        got = ex.errno if isinstance(ex.errno, str) else errno.errorcode.get(ex.errno)
        assert got == errno.errorcode[errnum], (fn.__name__, ex.errno, ex)
        return
    raise AssertionError(fn.__name__ + " succeeded")
expect(errno.EINVAL, h.pread, 4096, size)
expect(errno.ENOSPC, h.pwrite, b"x" * 4096, size - 1)
expect(errno.ENOSPC, h.zero, 4096, size)
expect(errno.EINVAL, h.trim, 4096, size)
expect(errno.EINVAL, h.pread, (32 << 20) + 1, 0)
assert h.pread(4, 0) == bytes(4)   # still connected
h.shutdown()

r = nbd.NBD()
r.connect_uri(ro)
assert r.is_read_only() and not r.can_trim() and not r.can_zero() and not r.can_fua()
r.set_strict_mode(0)
expect(errno.EPERM, r.pwrite, b"x" * 512, 0)
expect(errno.EPERM, r.trim, 512, 0)
expect(errno.EPERM, r.zero, 512, 0)
assert len(r.pread(512, 0)) == 512
r.shutdown()

# A read that fails half-way: data chunk, then an error at the offset.
p = nbd.NBD()
p.connect_uri(partial)
chunks.clear()
def chunk2(subbuf, offset, status, err):
    chunks.append((offset, len(subbuf), status, err))
    return 0
try:
    p.pread_structured(65536, 0, chunk2)
    raise AssertionError("partial read succeeded")
except nbd.Error as ex:
    got = ex.errno if isinstance(ex.errno, str) else errno.errorcode.get(ex.errno)
    assert got == "EIO", ex
assert [(o, n, s) for o, n, s, _ in chunks] == [(0, 32768, nbd.READ_DATA), (32768, 0, nbd.READ_ERROR)], chunks
p.shutdown()
print("ok")
`

func TestOracleLibnbdCommands(t *testing.T) {
	py := testsupport.NeedTool(t, "/usr/bin/python3") // Debian's python3-libnbd is for the system python
	if r := testsupport.Run(t, py, "-c", "import nbd"); r.Code != 0 {
		t.Skipf("skipping: python3-libnbd not installed: %s", r.Output())
	}
	script := filepath.Join(t.TempDir(), "check.py")
	os.WriteFile(script, []byte(libnbdScript), 0o644)
	for _, unix := range []bool{false, true} {
		// A fresh server each round: the script expects blank exports.
		cfg, _ := threeExports()
		partial := newProbe(1 << 20)
		partial.failAt = 32 << 10
		cfg.Exports = append(cfg.Exports, Export{Name: "partial", Device: partial})
		addr, sock := oracleServer(t, cfg)
		uri := func(name string) string {
			if unix {
				return "nbd+unix:///" + name + "?socket=" + sock
			}
			return "nbd://" + addr + "/" + name
		}
		if out := testsupport.Must(t, py, script, uri("disk"), uri("ro"), uri("partial")); strings.TrimSpace(out) != "ok" {
			t.Fatalf("libnbd script: %s", out)
		}
	}
}

func TestOracleNbdinfoTLS(t *testing.T) {
	testsupport.NeedTool(t, "nbdinfo")
	cfg, _ := threeExports()
	cfg.TLSConfig = serverTLS(t)
	cfg.TLSRequired = true
	addr, _ := oracleServer(t, cfg)
	_, port, _ := net.SplitHostPort(addr)
	dir := writeTLSDir(t)
	j := nbdinfo(t, "nbds://localhost:"+port+"/disk?tls-certificates="+dir)
	if !j.TLS || len(j.Exports) != 1 || j.Exports[0].Size != 4<<20 {
		t.Fatalf("nbdinfo over TLS: %+v", j)
	}
	// Plain text is refused in TLS-required mode.
	if r := testsupport.Run(t, "nbdinfo", "nbd://"+addr+"/disk"); r.Code == 0 {
		t.Fatalf("plain-text nbdinfo succeeded: %s", r.Output())
	}
}
