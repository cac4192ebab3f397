package ondisk

import (
	"math/bits"
	"strings"
)

// SlotMap records which slots of one directory are in use, so the FSD can
// find room for a new entry (its long-name slots and the short entry, which
// must be consecutive) without reading the directory again. A directory has
// at most MaxDirEntries slots, so the map is at most 8 KiB.
//
// Build it while scanning: NewSlotMap with the directory's slot count (all
// in use), then Release each run the Scanner's Free callback reports.
// Orphaned long-name slots stay in use, as on Windows. When the FSD places
// an entry in slots after the end marker, the slots after it must read as
// free too: directory clusters are zero-filled when allocated, and a
// directory whose tail holds stale bytes after its end marker needs those
// zeroed before the marker is overwritten. Like Table, a SlotMap is not safe
// for concurrent use; the directory's lock guards it.
type SlotMap struct {
	used []uint64 // bit i set = slot i in use
	n    int      // slots in the directory
}

// NewSlotMap makes a map of n slots (0..MaxDirEntries), all in use.
func NewSlotMap(n int) *SlotMap {
	n = max(0, min(n, MaxDirEntries))
	m := &SlotMap{used: make([]uint64, (n+63)/64), n: n}
	for i := range m.used {
		m.used[i] = ^uint64(0)
	}
	return m
}

// Len is the number of slots the directory has.
func (m *SlotMap) Len() int { return m.n }

// Grow records that the directory now has n slots (up to MaxDirEntries);
// the new slots are free.
func (m *SlotMap) Grow(n int) {
	n = min(n, MaxDirEntries)
	if n <= m.n {
		return
	}
	for len(m.used) < (n+63)/64 {
		m.used = append(m.used, 0)
	}
	for i := m.n; i < n; i++ {
		m.used[i>>6] &^= 1 << (i & 63)
	}
	m.n = n
}

// Use marks slots first..first+n-1 in use; Release marks them free. Slots
// outside the directory are ignored.
func (m *SlotMap) Use(first, n int) { m.mark(first, n, true) }

// Release marks slots first..first+n-1 free.
func (m *SlotMap) Release(first, n int) { m.mark(first, n, false) }

func (m *SlotMap) mark(first, n int, used bool) {
	for i := max(first, 0); i < first+n && i < m.n; i++ {
		if used {
			m.used[i>>6] |= 1 << (i & 63)
		} else {
			m.used[i>>6] &^= 1 << (i & 63)
		}
	}
}

// InUse reports whether slot i is in use (slots outside the directory are).
func (m *SlotMap) InUse(i int) bool {
	return i < 0 || i >= m.n || m.used[i>>6]&(1<<(i&63)) != 0
}

// Find returns the first run of k consecutive free slots, or false when the
// directory has none (the FSD then grows the directory, if the limits
// allow). It skips fully used words 64 slots at a time.
func (m *SlotMap) Find(k int) (int, bool) {
	if k <= 0 {
		return 0, false
	}
	run, start := 0, 0
	for i := 0; i < m.n; {
		w := m.used[i>>6] >> (i & 63)
		if w == ^uint64(0)>>(i&63) && run == 0 {
			i = (i | 63) + 1 // the rest of this word is in use
			continue
		}
		if w&1 != 0 {
			run = 0
			i++
			continue
		}
		if run == 0 {
			start = i
		}
		// Free slots from i up to the next used bit in this word.
		z := bits.TrailingZeros64(w)
		if z > 64-(i&63) {
			z = 64 - (i & 63)
		}
		z = min(z, m.n-i)
		run += z
		i += z
		if run >= k {
			return start, true
		}
	}
	return 0, false
}

// forbiddenLabel lists the characters Windows refuses in a FAT volume
// label, besides control characters.
const forbiddenLabel = "*?/\\|.,;:+=[]<>\""

// EncodeVolumeLabel converts a label to the 11 bytes stored in the boot
// sector and the root directory's label entry: encoded with cp (nil:
// DefaultCodePage), its case kept, padded with spaces. Case is kept as
// mkfs.fat and fatlabel keep it (Windows and mlabel upper-case labels), so
// that a label set and a label given to Format read back alike. Labels
// longer than 11 bytes, starting with a space, with characters the code
// page lacks, with control characters (DEL included) or any of
// *?/\|.,;:+=[]<>" are refused with ErrInvalidName; "" gives the
// all-spaces label (no label).
func EncodeVolumeLabel(label string, cp *CodePage) ([11]byte, error) {
	cp = orDefault(cp)
	out := [11]byte{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
	if strings.HasPrefix(label, " ") {
		return out, badName("volume label %q starts with a space", label)
	}
	n := 0
	for _, r := range label {
		if r < 0x20 || r == 0x7F || strings.ContainsRune(forbiddenLabel, r) {
			return out, badName("volume label %q contains %q", label, r)
		}
		b, ok := cp.Encode(r)
		if !ok {
			return out, badName("volume label %q: %q is not in code page %s", label, r, cp.Name())
		}
		if n == len(out) {
			return out, badName("volume label %q is longer than 11 bytes", label)
		}
		out[n] = b
		n++
	}
	return out, nil
}

// FormatVolumeLabel decodes a stored label with cp (nil: DefaultCodePage),
// without its trailing spaces.
func FormatVolumeLabel(label [11]byte, cp *CodePage) string {
	return strings.TrimRight(orDefault(cp).DecodeString(label[:]), " ")
}
