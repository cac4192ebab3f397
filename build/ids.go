package build

import (
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"

	"github.com/vdisk-dev/vdisk/partition"
)

// idSource gives the identities a configuration leaves open: the disk GUID
// and partition GUIDs of a GPT, and the MBR disk signature asked for with
// disk-signature = random. In order of precedence:
//
//   - genimage's randomseed: the numbers genimage itself draws from its
//     seeded generator, in the same order, so that a configuration with a
//     randomseed gives the disk genimage gives (see genimagePRNG);
//   - vdisk's seed (--seed, or SOURCE_DATE_EPOCH): name-based GUIDs of the
//     image's and the partition's names, so that nothing else in the
//     configuration changes them;
//   - otherwise random, as genimage without a seed.
type idSource struct {
	prng   *genimagePRNG
	seeded *partition.Seeded
}

func (s *idSource) diskUUID(img *Image) partition.GUID {
	switch {
	case s.prng != nil:
		return s.prng.uuid()
	case s.seeded != nil:
		return s.seeded.Sub(img.File).GUID("disk")
	}
	return randomGUID()
}

func (s *idSource) partitionUUID(img *Image, p *Partition) partition.GUID {
	switch {
	case s.prng != nil:
		return s.prng.uuid()
	case s.seeded != nil:
		return s.seeded.Sub(img.File).GUID("partition/" + p.Name)
	}
	return randomGUID()
}

func (s *idSource) diskSignature(img *Image) uint32 {
	switch {
	case s.prng != nil:
		return s.prng.next()
	case s.seeded != nil:
		return s.seeded.Sub(img.File).Uint32("disk-signature")
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on Linux
	return binary.LittleEndian.Uint32(b[:])
}

// volumeID is a vfat image's serial number in a reproducible build (one
// that is not has mkfs.fat's, from the time).
func (s *idSource) volumeID(img *Image) uint32 {
	if s.seeded != nil {
		return s.seeded.Sub(img.File).Uint32("volume-id")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func randomGUID() partition.GUID {
	g, _ := partition.NewGUID(nil)
	return g
}

// genimagePRNG is the generator genimage draws its random numbers from
// once a randomseed is given: a xorwow generator seeded with the CRC-32 of
// the seed string.
type genimagePRNG struct {
	lane    [5]uint32
	counter uint32
}

func newGenimagePRNG(seed string) *genimagePRNG {
	s := crc32.ChecksumIEEE([]byte(seed))
	p := &genimagePRNG{counter: s, lane: [5]uint32{
		1 + s&0x0FFFFFFF, 2 + s&0xFF0FFFFF, 3 + s&0xFFF00FFF, 4 + s&0xFFFFF0FF, 5 + s&0xFFFFFFF0}}
	for range 8 {
		p.next()
	}
	return p
}

func (p *genimagePRNG) next() uint32 {
	b := p.lane[4]
	p.lane[4], p.lane[3], p.lane[2], p.lane[1] = p.lane[3], p.lane[2], p.lane[1], p.lane[0]
	b ^= b >> 2
	b ^= b << 1
	b ^= p.lane[0] ^ p.lane[0]<<4
	p.lane[0] = b
	p.counter += 0x587C5
	return b + p.counter
}

// uuid draws a UUID as genimage does with a seed. Its eight numbers are
// drawn last field first (the order in which the C compiler evaluated the
// arguments of the call that formats them), each printed in decimal
// followed by an "x" (genimage's format string has %04ux where %04x was
// meant), and the text is then read back two characters at a time as
// hexadecimal, with strtoul's rules. The result is rarely a valid RFC
// 9562 UUID, but it is what genimage writes, and its own test suite
// compares disks against it byte for byte.
func (p *genimagePRNG) uuid() partition.GUID {
	var r [8]uint32
	for i := 7; i >= 0; i-- {
		r[i] = p.next()
	}
	v := [8]uint32{r[0] & 0xffff, r[1] & 0xffff, r[2] & 0xffff, r[3]&0x0fff | 0x4000,
		r[4]&0x3fff | 0x8000, r[5] & 0xffff, r[6] & 0xffff, r[7] & 0xffff}
	text := make([]byte, 0, 64)
	for i, x := range v {
		if i >= 2 && i <= 5 {
			text = append(text, '-')
		}
		text = append(text, []byte(pad4(x))...)
		text = append(text, 'x')
	}
	// genimage's uuid_parse: the byte at each position of the 8-4-4-4-12
	// form, the first three fields byte-swapped into GPT's on-disk order;
	// partition.GUID holds the text order, so swap back.
	offs := [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}
	var g partition.GUID
	for i, o := range offs {
		g[i] = strtoulByte(text[o : o+2])
	}
	return g
}

// pad4 prints x as %04u does.
func pad4(x uint32) string {
	s := []byte{}
	for n := x; ; n /= 10 {
		s = append([]byte{byte('0' + n%10)}, s...)
		if n < 10 {
			break
		}
	}
	for len(s) < 4 {
		s = append([]byte{'0'}, s...)
	}
	return string(s)
}

// strtoulByte is (unsigned char)strtoul(two characters, NULL, 16): leading
// white space, a sign, a 0x prefix before a hex digit, then hex digits;
// nothing readable is 0, and a minus negates modulo 2^64.
func strtoulByte(b []byte) byte {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	if i+2 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X') && isHexDigit(b[i+2]) {
		i += 2
	}
	var v uint64
	for ; i < len(b) && isHexDigit(b[i]); i++ {
		v = v*16 + uint64(digitValue(b[i]))
	}
	if neg {
		v = -v
	}
	return byte(v)
}
