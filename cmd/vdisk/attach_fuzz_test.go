package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"unicode"
)

// serverBytes builds what a server sends during negotiation: the greeting,
// then replies to NBD_OPT_GO, each (type, data).
func serverBytes(flags uint16, replies ...any) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint64(0x4e42444d41474943)) // NBDMAGIC
	binary.Write(&b, binary.BigEndian, uint64(0x49484156454F5054)) // IHAVEOPT
	binary.Write(&b, binary.BigEndian, flags)
	for i := 0; i+1 < len(replies); i += 2 {
		data := replies[i+1].([]byte)
		binary.Write(&b, binary.BigEndian, uint64(0x3e889045565a9))
		binary.Write(&b, binary.BigEndian, uint32(7)) // NBD_OPT_GO
		binary.Write(&b, binary.BigEndian, replies[i].(uint32))
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.Write(data)
	}
	return b.Bytes()
}

// fakeServer reads what the client writes (and ignores it) and answers
// with fixed bytes.
type fakeServer struct{ r io.Reader }

func (s fakeServer) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s fakeServer) Write(p []byte) (int, error) { return len(p), nil }

// FuzzNegotiate feeds attach's negotiation arbitrary server bytes: it must
// end (the input is finite), never panic, succeed only with the export's
// size known, and never print a server's control characters.
func FuzzNegotiate(f *testing.F) {
	export := make([]byte, 12)
	binary.BigEndian.PutUint16(export, 0)           // NBD_INFO_EXPORT
	binary.BigEndian.PutUint64(export[2:], 1<<20)   // size
	binary.BigEndian.PutUint16(export[10:], 1|1<<1) // HAS_FLAGS, READ_ONLY
	bsize := make([]byte, 14)
	binary.BigEndian.PutUint16(bsize, 3)
	binary.BigEndian.PutUint32(bsize[2:], 512)
	binary.BigEndian.PutUint32(bsize[6:], 4096)
	binary.BigEndian.PutUint32(bsize[10:], 32<<20)
	f.Add(serverBytes(3, uint32(3), export, uint32(3), bsize, uint32(1), []byte{}))
	f.Add(serverBytes(3, uint32(1<<31|6), []byte("no such export\x1b[2J")))
	f.Add(serverBytes(1, uint32(1), []byte{}))
	f.Add(serverBytes(0))
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := negotiate(fakeServer{bytes.NewReader(in)}, "disk@1")
		if err == nil && info.Size == 0 && !bytes.Contains(in, export[:2]) {
			t.Fatalf("negotiation succeeded without NBD_INFO_EXPORT: %+v", info)
		}
		if err != nil {
			for _, r := range err.Error() {
				if unicode.IsControl(r) {
					t.Fatalf("error carries control character %q: %q", r, err)
				}
			}
		}
	})
}
