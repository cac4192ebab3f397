package nbd

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The fuzzers feed arbitrary bytes to a server connection as the client's
// side of the stream (over net.Pipe) and require that the connection ends,
// without a panic, shortly after the input does.

var (
	fuzzOnce sync.Once
	fuzzSrv  *Server
)

func fuzzServer(t testing.TB) *Server {
	fuzzOnce.Do(func() {
		s, err := NewServer(Config{
			Exports: []Export{
				{Name: "", Device: NewMemDevice(256 << 10), MaxBlock: 256 << 10},
				{Name: "ro", Device: NewMemDevice(64 << 10), ReadOnly: true, MaxBlock: 64 << 10},
				{Name: "a", Device: NewMemDevice(64<<10 + 100), MinBlock: 512, MaxBlock: 64 << 10},
			},
			TLSConfig:        serverTLS(t),
			HandshakeTimeout: 2 * time.Second,
			MaxRequests:      4,
			MaxBytesInFlight: 1 << 20,
		})
		if err != nil {
			t.Fatal(err)
		}
		// Small maximum payloads keep each input cheap: the 32 MiB
		// default would make every large read allocate and copy.
		fuzzSrv = s
	})
	return fuzzSrv
}

// feed plays input as a client and waits for the server to finish.
func feed(t testing.TB, input []byte) {
	s := fuzzServer(t)
	cli, srv := net.Pipe()
	done := make(chan struct{})
	go func() {
		s.ServeConn(srv)
		close(done)
	}()
	go io.Copy(io.Discard, cli)
	cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
	cli.Write(input)
	cli.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("server connection did not end after the input did")
	}
}

// Builders for well-formed client streams, used as seeds.

func clientFlags(f uint32) []byte { return binary.BigEndian.AppendUint32(nil, f) }

func opt(o uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, o)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func req(cmd Command, flags CommandFlags, off uint64, n uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magicRequest)
	b = binary.BigEndian.AppendUint16(b, uint16(flags))
	b = binary.BigEndian.AppendUint16(b, uint16(cmd))
	b = binary.BigEndian.AppendUint64(b, 0x1122334455667788)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, n)
	return append(b, payload...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func handshakeSeeds() [][]byte {
	f := clientFlags(clientFixedNewstyle | clientNoZeroes)
	return [][]byte{
		nil,
		clientFlags(0),
		clientFlags(0xffffffff),
		cat(f, opt(optList, nil), opt(optAbort, nil)),
		cat(f, opt(optList, []byte{1})),
		cat(f, opt(optInfo, infoData("", infoName, infoDescription, infoBlockSize)), opt(optGo, infoData("ro"))),
		cat(f, opt(optInfo, []byte{0xff, 0xff, 0xff, 0xff, 0, 0})),
		cat(f, opt(optStructuredReply, nil), opt(optListMetaContext, metaData("", "base:", "qemu:x")),
			opt(optSetMetaContext, metaData("", metaAllocation)), opt(optGo, infoData(""))),
		cat(f, opt(optSetMetaContext, []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})),
		cat(f, opt(optExportName, []byte("a"))),
		cat(clientFlags(clientFixedNewstyle), opt(optExportName, nil), req(CmdRead, 0, 0, 512, nil)),
		cat(f, opt(optStartTLS, nil), []byte("\x16\x03\x01\x00\x05hello")),
		cat(f, opt(optStartTLS, []byte{1}), opt(0x1234, []byte("x")), opt(optGo, infoData("nope"))),
		cat(f, opt(0xdead, make([]byte, 100)), []byte("IHAVEOP")),
	}
}

func FuzzHandshake(f *testing.F) {
	for _, s := range handshakeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		feed(t, input)
	})
}

// requestPrefixes are the negotiations FuzzRequest chooses from with its
// first byte, so that request decoding is fuzzed in every mode.
var requestPrefixes = [][]byte{
	cat(clientFlags(clientFixedNewstyle), opt(optGo, infoData(""))),
	cat(clientFlags(clientFixedNewstyle|clientNoZeroes), opt(optStructuredReply, nil),
		opt(optSetMetaContext, metaData("", metaAllocation)), opt(optGo, infoData(""))),
	cat(clientFlags(clientFixedNewstyle), opt(optStructuredReply, nil), opt(optGo, infoData("ro"))),
	cat(clientFlags(clientFixedNewstyle), opt(optExportName, []byte("ro"))),
	cat(clientFlags(clientFixedNewstyle|clientNoZeroes), opt(optStructuredReply, nil),
		opt(optSetMetaContext, metaData("a", metaAllocation)), opt(optGo, infoData("a", infoBlockSize))),
	// Without agreeing to "a"'s block sizes: unaligned requests are
	// served by read-modify-write.
	cat(clientFlags(clientFixedNewstyle|clientNoZeroes), opt(optStructuredReply, nil),
		opt(optSetMetaContext, metaData("a", metaAllocation)), opt(optGo, infoData("a"))),
	cat(clientFlags(clientFixedNewstyle), opt(optExportName, []byte("a"))),
}

func requestSeeds() [][]byte {
	w := make([]byte, 4096)
	return [][]byte{
		cat(req(CmdRead, 0, 0, 4096, nil), req(CmdWrite, FlagFUA, 4096, 4096, w), req(CmdFlush, 0, 0, 0, nil), req(CmdDisc, 0, 0, 0, nil)),
		cat(req(CmdTrim, 0, 0, 8192, nil), req(CmdWriteZeroes, FlagNoHole|FlagFastZero, 0, 8192, nil), req(CmdCache, 0, 0, 512, nil)),
		cat(req(CmdBlockStatus, FlagReqOne, 0, 65536, nil), req(CmdBlockStatus, 0, 512, 1<<30, nil)),
		cat(req(CmdRead, FlagDF, 1<<62, 512, nil), req(CmdRead, 0, 100, 100, nil), req(CmdWrite, 0, 0, 1<<31, w)),
		cat(req(Command(42), 0xffff, 0, 0, nil), req(CmdWrite, 0, 0, 10, []byte("half"))),
		cat(req(CmdRead, 0, 0, 512, nil), []byte("garbage garbage garbage garbage")),
		req(CmdWrite, 0, 0, 64<<10+1, make([]byte, 1000)),
		cat(req(CmdWrite, 0, 100, 1000, make([]byte, 1000)), req(CmdRead, 0, 3, 5000, nil), req(CmdWriteZeroes, FlagFUA, 511, 2, nil),
			req(CmdWriteZeroes, FlagFastZero, 1, 1, nil), req(CmdTrim, 0, 1, 1023, nil), req(CmdRead, 0, 64<<10+99, 1, nil),
			req(CmdWrite, 0, 64<<10-1, 101, make([]byte, 101)), req(CmdBlockStatus, 0, 7, 9, nil)),
	}
}

func FuzzRequest(f *testing.F) {
	for i, s := range requestSeeds() {
		f.Add(byte(i), s)
	}
	f.Fuzz(func(t *testing.T, mode byte, stream []byte) {
		feed(t, cat(requestPrefixes[int(mode)%len(requestPrefixes)], stream))
	})
}

// TestWriteFuzzSeeds regenerates nbd/testdata/fuzz from the seed builders
// when VDISK_WRITE_FUZZ_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("VDISK_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set VDISK_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, i int, values ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		body := "go test fuzz v1\n"
		for _, v := range values {
			body += v + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range handshakeSeeds() {
		write("FuzzHandshake", i, fmt.Sprintf("[]byte(%q)", s))
	}
	for i, s := range requestSeeds() {
		write("FuzzRequest", i, fmt.Sprintf("byte(%q)", byte(i)), fmt.Sprintf("[]byte(%q)", s))
	}
}
