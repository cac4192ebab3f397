package ondisk

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxLongNameLen is the longest VFAT long name, in UTF-16 code units.
const MaxLongNameLen = 255

// ShortName is an 8.3 name as a directory entry stores it: 8 bytes of base
// name and 3 of extension, upper case, padded with spaces, no dot. A first
// byte of 0xE5 is kept as 0xE5 here; the 0x05 escape exists only on disk
// (DecodeShortEntry and ShortEntry.Encode translate it).
type ShortName [11]byte

// Fixed short names.
var (
	DotName    = ShortName{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
	DotDotName = ShortName{'.', '.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
)

// onDisk is the first byte as stored: 0xE5 becomes 0x05.
func (s ShortName) onDisk() ShortName {
	if s[0] == deletedMarker {
		s[0] = kanjiEscape
	}
	return s
}

// Checksum is the VFAT checksum that ties long-name entries to their short
// entry: a rotate-right-and-add over the 11 bytes as stored on disk (so a
// leading 0xE5 counts as 0x05, as mtools and Linux compute it).
func (s ShortName) Checksum() byte {
	var sum byte
	for _, c := range s.onDisk() {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// String is the name as "BASE.EXT" decoded with the default code page.
func (s ShortName) String() string { return s.Format(nil, 0) }

// Format is the displayed name: base and extension with trailing spaces
// removed, joined by a dot when there is an extension, decoded with cp (nil:
// DefaultCodePage), and lower-cased part by part as the NT case flags say
// (for non-ASCII too, as Linux and mtools do).
func (s ShortName) Format(cp *CodePage, c CaseFlags) string {
	cp = orDefault(cp)
	buf := make([]byte, 0, 16)
	part := func(b []byte, lower bool) {
		for _, x := range b {
			r := cp.Decode(x)
			if lower {
				r = unicode.ToLower(r)
			}
			buf = utf8.AppendRune(buf, r)
		}
	}
	base := strings.TrimRight(string(s[:8]), " ")
	ext := strings.TrimRight(string(s[8:]), " ")
	part([]byte(base), c&CaseLowerBase != 0)
	if ext != "" {
		buf = append(buf, '.')
		part([]byte(ext), c&CaseLowerExt != 0)
	}
	return string(buf)
}

// IsDot reports whether s is "." or "..".
func (s ShortName) IsDot() bool { return s == DotName || s == DotDotName }

// shortChar reports whether an ASCII byte may appear in a short name that
// vdisk writes: A-Z, 0-9 and $%'-_@~`!(){}^#& (the specification also
// allows space and bytes above 0x7F; vdisk generates neither, see
// GenerateShortName).
func shortChar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("$%'-_@~`!(){}^#&", c) >= 0
}

// ParseShortName reports whether name is a valid 8.3 name needing no long
// name: ASCII, a base of 1-8 and an optional extension of 1-3 short-name
// characters, each part all upper case or all lower case. It returns the
// stored form and the NT case flags (CaseLowerBase, CaseLowerExt) that give
// back the lower-case parts.
func ParseShortName(name string) (ShortName, CaseFlags, bool) {
	sn, c, fits, uniform := parse83(name)
	return sn, c, fits && uniform
}

// parse83 splits name into an 8.3 name. fits: the name is an 8.3 name
// ignoring case; uniform: each part has one case (so the NT case flags can
// express it).
func parse83(name string) (sn ShortName, c CaseFlags, fits, uniform bool) {
	sn = ShortName{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
	base, ext, hasDot := strings.Cut(name, ".")
	if len(base) == 0 || len(base) > 8 || len(ext) > 3 || (hasDot && len(ext) == 0) {
		return sn, 0, false, false
	}
	uniform = true
	part := func(p string, dst []byte, flag CaseFlags) bool {
		var upper, lower bool
		for i := 0; i < len(p); i++ {
			ch := p[i]
			switch {
			case ch >= 'a' && ch <= 'z':
				lower = true
				ch -= 'a' - 'A'
			case ch >= 'A' && ch <= 'Z':
				upper = true
			}
			if !shortChar(ch) {
				return false
			}
			dst[i] = ch
		}
		if upper && lower {
			uniform = false
		} else if lower {
			c |= flag
		}
		return true
	}
	if !part(base, sn[:8], CaseLowerBase) || !part(ext, sn[8:], CaseLowerExt) {
		return sn, 0, false, false
	}
	if !uniform {
		c = 0
	}
	return sn, c, true, uniform
}

// forbiddenLong lists the printable characters a long name may not contain;
// control characters (below 0x20) are forbidden too.
const forbiddenLong = "\"*/:<>?\\|"

// ValidateLongName checks a name as it will be stored: not empty, valid
// UTF-8, not "." or "..", no control characters or any of "*/:<>?\|, not
// ending in a dot or a space (CleanLongName strips those, as Windows does),
// at most 255 UTF-16 units. Errors wrap ErrInvalidName.
func ValidateLongName(name string) error {
	switch name {
	case "":
		return badName("empty name")
	case ".", "..":
		return badName("%q is reserved", name)
	}
	if !utf8.ValidString(name) {
		return badName("%q is not valid UTF-8", name)
	}
	if c := name[len(name)-1]; c == '.' || c == ' ' {
		return badName("%q ends with a dot or a space", name)
	}
	n := 0
	for _, r := range name {
		if r < 0x20 || (r < 0x80 && strings.ContainsRune(forbiddenLong, r)) {
			return badName("%q contains %q, which FAT does not allow", name, r)
		}
		n += utf16.RuneLen(r)
	}
	if n > MaxLongNameLen {
		return badName("name is %d UTF-16 units, FAT allows %d", n, MaxLongNameLen)
	}
	return nil
}

// CleanLongName strips trailing dots and spaces, as Windows does with every
// name it is given, then validates the result with ValidateLongName. "."
// and ".." are refused, not stripped.
func CleanLongName(name string) (string, error) {
	if name == "." || name == ".." {
		return "", badName("%q is reserved", name)
	}
	clean := strings.TrimRight(name, ". ")
	if clean == "" && name != "" {
		return "", badName("%q is only dots and spaces", name)
	}
	return clean, ValidateLongName(clean)
}

// LongNameUnits is the length of name in UTF-16 code units.
func LongNameUnits(name string) int {
	n := 0
	for _, r := range name {
		n += utf16.RuneLen(r)
	}
	return n
}

// FoldKey maps name to a key such that FoldKey(a) == FoldKey(b) exactly when
// strings.EqualFold(a, b): each rune becomes the smallest rune of its simple
// case-folding orbit (for letters mostly the upper-case form). Use it to key
// a case-insensitive, case-preserving name index; both long names and the
// short names' Format output go in under the same key space.
func FoldKey(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 0x80 || (c >= 'a' && c <= 'z') {
			ascii = false
			break
		}
	}
	if ascii {
		return name
	}
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune is the smallest rune of r's SimpleFold orbit. Invalid UTF-8 has
// already become U+FFFD, which folds to itself.
func foldRune(r rune) rune {
	if r < 0x80 {
		if r >= 'a' && r <= 'z' {
			// 'k' and 's' have non-ASCII orbit members (K, ſ), but the
			// upper-case ASCII letter is still the smallest.
			return r - ('a' - 'A')
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// GenerateShortName returns the short name for a new directory entry whose
// long name is long (already cleaned and valid: see CleanLongName), the NT
// case flags to store, and whether long-name entries are needed.
//
// exists reports whether a short name is already used in the directory; the
// caller answers from an index it keeps (a map or set of the directory's
// short names), so generation costs a handful of look-ups, not a directory
// scan per candidate. In the usual case at most 4 look-ups + 1 are made;
// even an adversarial exists returning true for everything ends after a
// bounded number of candidates, with ErrNoSpace.
//
// The rules follow Windows:
//   - a long name that is a valid 8.3 name (ParseShortName), all upper case
//     or with each part all lower case, is stored as that short name alone,
//     lower case parts marked with the NT case flags (as Windows NT and
//     Linux do);
//   - a valid 8.3 name in mixed case ("Foo.txt") is stored as its upper-case
//     short name plus a long name;
//   - any other name gets a basis name: upper-cased, spaces and leading dots
//     removed, the part before the last dot (other dots removed) cut to 8
//     characters, up to 3 characters after the last dot as extension; every
//     character that is not a short-name character becomes '_' ("lossy");
//     then a numeric tail: the basis cut to 6 characters (fewer for longer
//     tails) plus ~1 .. ~4, and after those are taken, the hashed form:
//     the first 2 characters of the basis, 4 hex digits of a hash of the
//     long name, and ~1 .. ~9 (further hash values if all are taken).
//
// Generated short names are pure ASCII: a character outside ASCII (é, 日)
// becomes '_', where Windows would map it through the OEM code page. That
// makes the short names the same under every reader's code page; the long
// name keeps the real characters.
func GenerateShortName(long string, exists func(ShortName) bool) (sn ShortName, c CaseFlags, needLFN bool, err error) {
	if err := ValidateLongName(long); err != nil {
		return sn, 0, false, err
	}
	sn, c, fits, uniform := parse83(long)
	if fits && !exists(sn) {
		if uniform {
			return sn, c, false, nil
		}
		return sn, 0, true, nil
	}
	base, ext := basisName(long)
	for n := 1; n <= 4; n++ {
		if cand := withTail(base, n, ext); !exists(cand) {
			return cand, 0, true, nil
		}
	}
	h := nameHash(long)
	const hexDigits = "0123456789ABCDEF"
	var prefix [6]byte
	k := copy(prefix[:], base[:min(len(base), 2)])
	for i := 0; i < 1<<16; i++ {
		hh := uint16(h + uint32(i))
		p := append(prefix[:k:k], hexDigits[hh>>12], hexDigits[hh>>8&15], hexDigits[hh>>4&15], hexDigits[hh&15])
		for n := 1; n <= 9; n++ {
			if cand := withTail(p, n, ext); !exists(cand) {
				return cand, 0, true, nil
			}
		}
	}
	return sn, 0, false, ErrNoSpace
}

// basisName computes the upper-case basis name (up to 8 bytes) and
// extension (up to 3 bytes) of a long name, replacing characters that
// cannot appear in a short name with '_'.
func basisName(long string) (base, ext []byte) {
	s := strings.ReplaceAll(long, " ", "")
	s = strings.TrimLeft(s, ".")
	b, e := s, ""
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		b, e = s[:i], s[i+1:]
	}
	conv := func(p string, limit int) []byte {
		out := make([]byte, 0, limit)
		for _, r := range p {
			if len(out) == limit {
				break
			}
			if r == '.' {
				continue
			}
			ch := byte('_')
			if r < 0x80 {
				ch = byte(unicode.ToUpper(r))
				if !shortChar(ch) {
					ch = '_'
				}
			}
			out = append(out, ch)
		}
		return out
	}
	base, ext = conv(b, 8), conv(e, 3)
	if len(base) == 0 {
		base = []byte{'_'}
	}
	return base, ext
}

// withTail builds base cut short enough for "~n" to fit in 8 bytes, the
// tail, and the extension.
func withTail(base []byte, n int, ext []byte) ShortName {
	var tail [8]byte
	t := len(tail)
	for ; n > 0; n /= 10 {
		t--
		tail[t] = byte('0' + n%10)
	}
	t--
	tail[t] = '~'
	sn := ShortName{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
	k := copy(sn[:], base[:min(len(base), t)])
	copy(sn[k:8], tail[t:])
	copy(sn[8:], ext)
	return sn
}

// nameHash is a 16-bit hash of the UTF-16 form of a long name (FNV-1a,
// folded), for the hashed short-name form.
func nameHash(long string) uint32 {
	h := uint32(2166136261)
	for _, u := range utf16.Encode([]rune(long)) {
		h ^= uint32(u & 0xFF)
		h *= 16777619
		h ^= uint32(u >> 8)
		h *= 16777619
	}
	return (h>>16 ^ h) & 0xFFFF
}
