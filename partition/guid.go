package partition

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// GUID is a GPT identifier held in the order its text form is read
// (C12A7328-F81F-...), so literals compare and print naturally; the codec
// converts to the mixed-endian layout the UEFI specification stores on disk.
type GUID [16]byte

// ParseGUID accepts the canonical 8-4-4-4-12 hex form in either case, the
// form sfdisk, blkid and the UEFI specification print.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("partition: bad GUID %q: want XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(g[:], []byte(h)); err != nil {
		return GUID{}, fmt.Errorf("partition: bad GUID %q: %v", s, err)
	}
	return g, nil
}

func mustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// String prints upper case, matching sfdisk and the UEFI specification, so
// output can be compared with those tools verbatim.
func (g GUID) String() string {
	h := strings.ToUpper(hex.EncodeToString(g[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// IsZero reports the all-zero GUID, which GPT uses to mark an unused entry.
func (g GUID) IsZero() bool { return g == GUID{} }

// MarshalText lets GUIDs appear as strings in JSON output (vdisk info --json).
func (g GUID) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (g *GUID) UnmarshalText(b []byte) error {
	v, err := ParseGUID(string(b))
	if err != nil {
		return err
	}
	*g = v
	return nil
}

// NewGUID makes a random (version 4) GUID from r, or from crypto/rand when r
// is nil; passing a seeded reader gives reproducible images.
func NewGUID(r io.Reader) (GUID, error) {
	if r == nil {
		r = rand.Reader
	}
	var g GUID
	if _, err := io.ReadFull(r, g[:]); err != nil {
		return GUID{}, fmt.Errorf("partition: reading random GUID: %w", err)
	}
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g, nil
}

// putGUID stores g in the on-disk mixed-endian layout: the first three
// fields little-endian, the last eight bytes as they are.
func putGUID(b []byte, g GUID) {
	b[0], b[1], b[2], b[3] = g[3], g[2], g[1], g[0]
	b[4], b[5] = g[5], g[4]
	b[6], b[7] = g[7], g[6]
	copy(b[8:16], g[8:16])
}

// getGUID is the inverse of putGUID.
func getGUID(b []byte) GUID {
	var g GUID
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:16], b[8:16])
	return g
}

// NameGUID derives a GUID from a namespace and a name the way RFC 9562
// name-based UUIDs do (version 5: SHA-1 of the namespace's 16 bytes and
// the name): the same two always give the same GUID, and different names
// give unrelated ones. Reproducible images take their disk and partition
// GUIDs from it rather than from a random source.
func NameGUID(namespace GUID, name string) GUID {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	var g GUID
	copy(g[:], h.Sum(nil))
	g[6] = g[6]&0x0f | 0x50
	g[8] = g[8]&0x3f | 0x80
	return g
}

// namespaceVdisk is the namespace of every seed: NameGUID(namespaceVdisk,
// seed) roots the identities one seed gives.
var namespaceVdisk = mustGUID("3B7E9E8A-1C1F-4A39-9A0E-6F2D4C8B5D17")

// Seeded derives identities (GUIDs, MBR disk signatures, FAT volume
// serials) from a seed string and names, so that rebuilding from the same
// seed gives the same identities and a name's identity does not depend on
// what else is built: adding a partition changes no other partition's
// GUID. The zero value is not usable; make one with NewSeeded.
type Seeded struct{ ns GUID }

// NewSeeded returns the identities of seed.
func NewSeeded(seed string) Seeded { return Seeded{ns: NameGUID(namespaceVdisk, seed)} }

// Sub returns the identities of the part of what the seed describes that
// name names (an image of a build, a partition of an image), a namespace
// of its own.
func (s Seeded) Sub(name string) Seeded { return Seeded{ns: NameGUID(s.ns, name)} }

// GUID is the GUID of name.
func (s Seeded) GUID(name string) GUID { return NameGUID(s.ns, name) }

// Uint32 is a 32-bit identity of name (an MBR disk signature, a volume
// serial number), never 0, which tools take for "none".
func (s Seeded) Uint32(name string) uint32 {
	g := s.GUID(name)
	if v := binary.BigEndian.Uint32(g[:4]); v != 0 {
		return v
	}
	return 1
}
