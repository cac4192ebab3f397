package nbd

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// threeExports is a server configuration used by many tests: the default
// export "" (writable), a named writable one and a read-only one.
func threeExports() (Config, map[string]*MemDevice) {
	devs := map[string]*MemDevice{
		"":     NewMemDevice(1 << 20),
		"disk": NewMemDevice(4 << 20),
		"ro":   NewMemDevice(64 << 10),
	}
	return Config{Exports: []Export{
		{Name: "", Description: "default export", Device: devs[""]},
		{Name: "disk", Description: "whole disk", Device: devs["disk"]},
		{Name: "ro", Device: devs["ro"], ReadOnly: true},
	}}, devs
}

func TestGreeting(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	if c.hsf != flagFixedNewstyle|flagNoZeroes {
		t.Fatalf("handshake flags %#x", c.hsf)
	}
}

// The server speaks only fixed newstyle and must drop clients that send
// flags it does not know (spec: "the server MUST drop the TCP connection").
func TestRejectedClientFlags(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	for _, f := range []uint32{0, clientNoZeroes, 1 << 2, 0xffffffff} {
		c := dialT(t, "tcp", addr)
		c.greet(f)
		c.expectClosed()
	}
	// An oldstyle client only reads; it gets the newstyle greeting and
	// nothing resembling an oldstyle export header.
	c := dialT(t, "tcp", addr)
	b := c.must(c.readFull(18))
	if binary.BigEndian.Uint64(b[8:]) == magicOldstyle {
		t.Fatal("server spoke oldstyle")
	}
}

func TestOptList(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	rs := c.option(optList, nil)
	if last(rs) != repAck || len(rs) != 4 {
		t.Fatalf("LIST replies %+v", rs)
	}
	var got []string
	for _, r := range rs[:3] {
		if r.typ != repServer {
			t.Fatalf("reply type %#x", r.typ)
		}
		n := binary.BigEndian.Uint32(r.data)
		got = append(got, string(r.data[4:4+n])+"|"+string(r.data[4+n:]))
	}
	want := "|default export,disk|whole disk,ro|"
	if strings.Join(got, ",") != want {
		t.Fatalf("LIST = %q, want %q", strings.Join(got, ","), want)
	}
	if rs := c.option(optList, []byte{1}); last(rs) != repErrInvalid {
		t.Fatalf("LIST with data: %#x", last(rs))
	}
	// The session goes on.
	c.goExport("ro")
}

func TestUnknownOptionsContinue(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	for _, opt := range []uint32{0, 4, 11, 12, 0x1234, 0xffffffff} {
		if rs := c.option(opt, []byte("some data")); last(rs) != repErrUnsup {
			t.Fatalf("option %#x: %#x", opt, last(rs))
		}
	}
	// Oversized data is skipped, not buffered, and the stream stays in step.
	big := make([]byte, maxOptionData+1)
	if rs := c.option(0x4242, big); last(rs) != repErrUnsup {
		t.Fatalf("big unknown option: %#x", last(rs))
	}
	if rs := c.option(optInfo, big); last(rs) != repErrTooBig {
		t.Fatalf("big INFO: %#x", last(rs))
	}
	c.goExport("disk")
	if c.size != 4<<20 {
		t.Fatalf("size %d", c.size)
	}
}

func TestOptInfo(t *testing.T) {
	cfg, _ := threeExports()
	cfg.Exports[1].MinBlock = 512
	cfg.Exports[1].MaxBlock = 1 << 20
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)

	rs := c.option(optInfo, infoData("disk", infoName, infoDescription, infoBlockSize, 0x777))
	if last(rs) != repAck {
		t.Fatalf("INFO: %#x", last(rs))
	}
	c.parseInfos(rs)
	if c.size != 4<<20 {
		t.Fatalf("size %d", c.size)
	}
	if string(c.info[infoName]) != "disk" || string(c.info[infoDescription]) != "whole disk" {
		t.Fatalf("name %q description %q", c.info[infoName], c.info[infoDescription])
	}
	bs := c.info[infoBlockSize]
	if len(bs) != 12 || binary.BigEndian.Uint32(bs) != 512 || binary.BigEndian.Uint32(bs[4:]) != 4096 || binary.BigEndian.Uint32(bs[8:]) != 1<<20 {
		t.Fatalf("block size info % x", bs)
	}

	for name, data := range map[string][]byte{
		"short":         {0, 0, 0},
		"name too long": infoData("disk")[:6],
		"count wrong":   append(infoData("disk", infoName), 0),
		"huge name len": {0xff, 0xff, 0xff, 0xff, 0, 0},
	} {
		if rs := c.option(optInfo, data); last(rs) != repErrInvalid {
			t.Errorf("%s: %#x", name, last(rs))
		}
	}
	if rs := c.option(optInfo, infoData("nope")); last(rs) != repErrUnknown || len(rs) != 1 {
		t.Fatalf("unknown export: %+v", rs)
	}
	if rs := c.option(optGo, infoData("nope")); last(rs) != repErrUnknown {
		t.Fatalf("GO unknown export: %#x", last(rs))
	}
	// The default export is ""; descriptions are only sent when asked.
	rs = c.option(optInfo, infoData(""))
	c.parseInfos(rs)
	if c.size != 1<<20 || c.info[infoDescription] != nil {
		t.Fatalf("default export: size %d infos %v", c.size, c.info)
	}
	c.goExport("")
	r := c.do(CmdRead, 0, 0, 512, nil)
	if r.errno != 0 || len(r.data) != 512 {
		t.Fatalf("read after GO: %+v", r)
	}
}

func TestExportName(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	for _, noZeroes := range []bool{false, true} {
		c := dialT(t, "tcp", addr)
		f := uint32(clientFixedNewstyle)
		if noZeroes {
			f |= clientNoZeroes
		}
		c.greet(f)
		c.sendOpt(optExportName, []byte("ro"))
		b := c.must(c.readFull(10))
		if binary.BigEndian.Uint64(b) != 64<<10 {
			t.Fatalf("size %d", binary.BigEndian.Uint64(b))
		}
		flags := binary.BigEndian.Uint16(b[8:])
		if flags&tflagReadOnly == 0 || flags&tflagSendDF != 0 {
			t.Fatalf("flags %#x", flags)
		}
		if !noZeroes {
			if z := c.must(c.readFull(124)); strings.Trim(string(z), "\x00") != "" {
				t.Fatal("padding is not zero")
			}
		}
		r := c.do(CmdRead, 0, 4096, 4096, nil)
		if !r.simple || r.errno != 0 || len(r.data) != 4096 {
			t.Fatalf("read: %+v", r)
		}
	}
	// An unknown name cannot be refused with an error: the session ends.
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	c.sendOpt(optExportName, []byte("missing"))
	c.expectClosed()
}

func TestAbort(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	if rs := c.option(optAbort, []byte("ignored")); last(rs) != repAck {
		t.Fatalf("ABORT: %#x", last(rs))
	}
	c.expectClosed()
}

func TestBadOptionMagicCloses(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	c.write(make([]byte, 16))
	c.expectClosed()
}

func TestTransmissionFlags(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	rw := uint16(tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim | tflagSendWriteZeroes |
		tflagCanMultiConn | tflagSendCache | tflagSendFastZero)
	ro := uint16(tflagHasFlags | tflagReadOnly | tflagSendFlush | tflagCanMultiConn | tflagSendCache)
	for _, tc := range []struct {
		name       string
		structured bool
		want       uint16
	}{
		{"disk", false, rw},
		{"disk", true, rw | tflagSendDF},
		{"ro", false, ro},
		{"ro", true, ro | tflagSendDF},
	} {
		c := dialConnect(t, addr, tc.name, tc.structured, false)
		if c.flags != tc.want {
			t.Errorf("%s structured=%v: flags %#x, want %#x", tc.name, tc.structured, c.flags, tc.want)
		}
	}
}

// An export whose data others may change beneath the server withholds
// CAN_MULTI_CONN, and only that flag: clients then keep to one connection.
func TestSingleConnWithholdsMultiConn(t *testing.T) {
	cfg, _ := threeExports()
	cfg.Exports = append(cfg.Exports,
		Export{Name: "shared", Device: NewMemDevice(64 << 10), ReadOnly: true, SingleConn: true},
		Export{Name: "shared-rw", Device: NewMemDevice(64 << 10), SingleConn: true})
	_, addr := startServer(t, cfg)
	for _, tc := range []struct {
		name string
		want uint16
	}{
		{"shared", tflagHasFlags | tflagReadOnly | tflagSendFlush | tflagSendCache},
		{"shared-rw", tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim | tflagSendWriteZeroes | tflagSendCache | tflagSendFastZero},
		{"ro", tflagHasFlags | tflagReadOnly | tflagSendFlush | tflagCanMultiConn | tflagSendCache},
	} {
		c := dialConnect(t, addr, tc.name, false, false)
		if c.flags != tc.want {
			t.Errorf("%s: flags %#x, want %#x", tc.name, c.flags, tc.want)
		}
	}
}

func TestMetaContextOptions(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)

	// SET before structured replies is refused.
	if rs := c.option(optSetMetaContext, metaData("disk", metaAllocation)); last(rs) != repErrInvalid {
		t.Fatalf("SET without structured: %#x", last(rs))
	}
	if rs := c.option(optStructuredReply, []byte{0}); last(rs) != repErrInvalid {
		t.Fatalf("STRUCTURED_REPLY with data: %#x", last(rs))
	}
	if rs := c.option(optStructuredReply, nil); last(rs) != repAck {
		t.Fatal("STRUCTURED_REPLY refused")
	}
	names := func(rs []optReply) []string {
		var out []string
		for _, r := range rs {
			if r.typ == repMetaContext {
				out = append(out, string(r.data[4:]))
			}
		}
		return out
	}
	for _, tc := range []struct {
		opt     uint32
		queries []string
		want    string
	}{
		{optListMetaContext, nil, metaAllocation},
		{optListMetaContext, []string{"base:"}, metaAllocation},
		{optListMetaContext, []string{"base:allocation"}, metaAllocation},
		{optListMetaContext, []string{"qemu:dirty-bitmap:x", "x-foo:bar"}, ""},
		{optListMetaContext, []string{"base:nothing"}, ""},
		{optSetMetaContext, nil, ""},
		{optSetMetaContext, []string{"base:"}, ""},
		{optSetMetaContext, []string{"qemu:allocation-depth"}, ""},
		{optSetMetaContext, []string{"base:allocation", "qemu:x", "base:allocation"}, metaAllocation},
	} {
		rs := c.option(tc.opt, metaData("disk", tc.queries...))
		if last(rs) != repAck || strings.Join(names(rs), ",") != tc.want {
			t.Errorf("opt %d %q: %+v", tc.opt, tc.queries, rs)
		}
		if tc.opt == optSetMetaContext && tc.want != "" && binary.BigEndian.Uint32(rs[0].data) == 0 {
			// any id is fine, but it must be what BLOCK_STATUS uses
			t.Log("context id 0")
		}
	}
	if rs := c.option(optListMetaContext, metaData("nope")); last(rs) != repErrUnknown {
		t.Fatalf("unknown export: %#x", last(rs))
	}
	if rs := c.option(optListMetaContext, metaData("disk", "base:")[:10]); last(rs) != repErrInvalid {
		t.Fatalf("truncated query: %#x", last(rs))
	}
	// A failed SET clears the selection: block status is then refused.
	if rs := c.option(optSetMetaContext, []byte{1}); last(rs) != repErrInvalid {
		t.Fatal("malformed SET accepted")
	}
	c.goExport("disk")
	c.sr = true
	if r := c.do(CmdBlockStatus, 0, 0, 4096, nil); r.errno != EINVAL {
		t.Fatalf("BLOCK_STATUS without context: %+v", r)
	}
}

// Contexts selected for one export do not carry over to another.
func TestMetaContextOtherExport(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	c.option(optStructuredReply, nil)
	c.sr = true
	if rs := c.option(optSetMetaContext, metaData("ro", metaAllocation)); len(rs) != 2 {
		t.Fatalf("SET: %+v", rs)
	}
	c.goExport("disk")
	if r := c.do(CmdBlockStatus, 0, 0, 4096, nil); r.errno != EINVAL {
		t.Fatalf("BLOCK_STATUS with another export's context: %+v", r)
	}
}

func TestStartTLSWithoutConfig(t *testing.T) {
	cfg, _ := threeExports()
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	if rs := c.option(optStartTLS, nil); last(rs) != repErrPolicy {
		t.Fatalf("STARTTLS: %#x", last(rs))
	}
	c.goExport("")
}

func TestHandshakeTimeout(t *testing.T) {
	cfg, _ := threeExports()
	cfg.HandshakeTimeout = 200 * time.Millisecond
	_, addr := startServer(t, cfg)
	c := dialT(t, "tcp", addr)
	c.greet(clientFixedNewstyle)
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}
	// The deadline does not apply once transmission started.
	c = dialConnect(t, addr, "", false, false)
	time.Sleep(400 * time.Millisecond)
	if r := c.do(CmdRead, 0, 0, 512, nil); r.errno != 0 {
		t.Fatalf("read: %+v", r)
	}
}

func TestNewServerValidation(t *testing.T) {
	d := NewMemDevice(1 << 20)
	for name, cfg := range map[string]Config{
		"nil device":      {Exports: []Export{{Name: "a"}}},
		"duplicate":       {Exports: []Export{{Name: "a", Device: d}, {Name: "a", Device: d}}},
		"min not pow2":    {Exports: []Export{{Device: d, MinBlock: 768}}},
		"min too big":     {Exports: []Export{{Device: d, MinBlock: 128 << 10}}},
		"pref below 512":  {Exports: []Export{{Device: d, PreferredBlock: 256}}},
		"pref below min":  {Exports: []Export{{Device: d, MinBlock: 8192, PreferredBlock: 4096}}},
		"max below pref":  {Exports: []Export{{Device: d, MaxBlock: 1024}}},
		"max above limit": {Exports: []Export{{Device: d, MaxBlock: 1 << 30}}},
		"NUL in name":     {Exports: []Export{{Name: "a\x00b", Device: d}}},
		"tls required":    {Exports: []Export{{Device: d}}, TLSRequired: true},
	} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s, err := NewServer(Config{Exports: []Export{{Device: d, MinBlock: 512}}})
	if err != nil {
		t.Fatal(err)
	}
	e := s.Exports()[0]
	if e.MinBlock != 512 || e.PreferredBlock != 4096 || e.MaxBlock != 32<<20 {
		t.Fatalf("defaults: %+v", e)
	}
}

func TestListenAddr(t *testing.T) {
	l, err := ListenAddr("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr().Network() != "tcp" {
		t.Fatalf("network %s", l.Addr().Network())
	}
	l.Close()
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err = ListenAddr("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := os.Stat(path); err != nil || l.Addr().Network() != "unix" {
		t.Fatalf("unix listener: %v %s", err, l.Addr().Network())
	}
}

func TestDefaultErrno(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Errno
	}{
		{nil, 0},
		{ENOSPC, ENOSPC},
		{errors.Join(errors.New("x"), EOVERFLOW), EOVERFLOW},
		{ErrNotFast, ENOTSUP},
		{errors.ErrUnsupported, ENOTSUP},
		{syscall.EROFS, EPERM},
		{&os.PathError{Op: "write", Path: "/x", Err: syscall.EDQUOT}, ENOSPC},
		{syscall.EFBIG, ENOSPC},
		{syscall.EINVAL, EINVAL},
		{syscall.ENOMEM, ENOMEM},
		{syscall.EOPNOTSUPP, ENOTSUP},
		{syscall.ESHUTDOWN, ESHUTDOWN},
		{syscall.EBADF, EIO},
		{errors.New("anything"), EIO},
		{net.ErrClosed, EIO},
	} {
		if got := DefaultErrno(tc.err); got != tc.want {
			t.Errorf("DefaultErrno(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if !strings.Contains(EPERM.Error(), "EPERM") || CmdWriteZeroes.String() != "WRITE_ZEROES" || Command(99).String() != "UNKNOWN" {
		t.Fatal("names")
	}
}
