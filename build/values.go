package build

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// parseUint reads an unsigned number the way C's strtoull reads it with
// base 0, which is how genimage reads sizes and offsets: 0x for hex, a
// leading 0 for octal, else decimal. It returns the number and the rest of
// the string.
func parseUint(s string) (uint64, string, error) {
	base, digits := 10, s
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isHexDigit(s[2]):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	n := 0
	for n < len(digits) && digitValue(digits[n]) < base {
		n++
	}
	if n == 0 {
		if base == 8 { // a lone "0"
			return 0, digits, nil
		}
		return 0, s, fmt.Errorf("%q is not a number", s)
	}
	v, err := strconv.ParseUint(digits[:n], base, 64)
	if err != nil {
		return 0, s, fmt.Errorf("%q is too large", s)
	}
	return v, digits[n:], nil
}

func isHexDigit(c byte) bool { return digitValue(c) < 16 }

func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return 99
}

// maxSize bounds every size and offset, so that sums of them cannot
// overflow: 32 PiB, more than any disk this builds.
const maxSize = 1 << 55

// parseSize reads a genimage size: a number with an optional suffix k or K
// (KiB), M (MiB), G (GiB) or s (512-byte sectors), and % where percent
// is allowed (an image's size, as a share of its content). genimage
// ignores what follows the suffix ("64MB" is 64 MiB there); here it is an
// error, so that "64MB" is not read as MiB without a word.
func parseSize(s string, percent bool) (v int64, isPercent bool, err error) {
	n, rest, err := parseUint(s)
	if err != nil {
		return 0, false, fmt.Errorf("size %q: want a number with an optional suffix k, M, G or s", s)
	}
	mul := uint64(1)
	switch {
	case rest == "":
	case rest == "k" || rest == "K":
		mul = 1 << 10
	case rest == "M":
		mul = 1 << 20
	case rest == "G":
		mul = 1 << 30
	case rest == "s":
		mul = 512
	case rest == "%" && percent:
		isPercent = true
	case len(rest) > 1 && strings.ContainsRune("kKMGs", rune(rest[0])):
		return 0, false, fmt.Errorf("size %q: nothing may follow the suffix %q (genimage would read %s%c)", s, rest[:1], s[:len(s)-len(rest)], rest[0])
	default:
		allowed := "k, M, G or s"
		if percent {
			allowed = "k, M, G, s or %"
		}
		return 0, false, fmt.Errorf("size %q: unknown suffix %q (want %s)", s, rest, allowed)
	}
	hi, lo := bits.Mul64(n, mul)
	if hi != 0 || lo > maxSize {
		return 0, false, fmt.Errorf("size %q is too large (more than 32 PiB)", s)
	}
	return int64(lo), isPercent, nil
}

// parseInt reads an integer option as libconfuse does: an optional sign,
// then 0x (hex), 0b (binary), a leading 0 (octal) or decimal digits, and
// nothing after them.
func parseInt(s string) (int64, error) {
	neg, body := false, s
	if strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+") {
		neg, body = body[0] == '-', body[1:]
	}
	var v uint64
	var rest string
	var err error
	if len(body) > 2 && body[0] == '0' && (body[1] == 'b' || body[1] == 'B') {
		var n int
		for n = 2; n < len(body) && (body[n] == '0' || body[n] == '1'); n++ {
		}
		if n == 2 {
			return 0, fmt.Errorf("%q is not an integer", s)
		}
		v, err = strconv.ParseUint(body[2:n], 2, 64)
		rest = body[n:]
	} else {
		v, rest, err = parseUint(body)
	}
	if err != nil || rest != "" {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// parseBool reads a boolean as libconfuse does: true, yes, on or false,
// no, off, in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (want true, yes, on, false, no or off)", s)
}

// validUUID reports the 8-4-4-4-12 hex form genimage accepts for UUIDs.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
		} else if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// Hole is a range of an input image that holds nothing worth keeping,
// which other partitions and the partition table may overlap (genimage's
// holes): [Start, End) in bytes from the image's start.
type Hole struct {
	Start, End int64
}

// parseHole reads "(<start>;<end>)" with sizes and optional spaces.
func parseHole(s string) (Hole, error) {
	t := strings.TrimSpace(s)
	inner, ok := strings.CutPrefix(t, "(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	a, b, ok2 := strings.Cut(inner, ";")
	if !ok || !ok2 {
		return Hole{}, fmt.Errorf("hole %q: want \"(<start>;<end>)\"", s)
	}
	start, _, err := parseSize(strings.TrimSpace(a), false)
	if err != nil {
		return Hole{}, fmt.Errorf("hole %q: %v", s, err)
	}
	end, _, err := parseSize(strings.TrimSpace(b), false)
	if err != nil {
		return Hole{}, fmt.Errorf("hole %q: %v", s, err)
	}
	if end < start {
		return Hole{}, fmt.Errorf("hole %q ends before it starts", s)
	}
	return Hole{start, end}, nil
}

// splitWords splits genimage's extraargs into words the way the shell
// genimage hands them to does: blanks separate words, '...' keeps
// everything, "..." keeps everything but \" \\ \$ \` and a backslash
// before a newline, and a backslash outside quotes keeps the next
// character. What only a shell could do (expansions, globs, redirections,
// several commands) is an error, since vdisk runs no shell.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur []byte
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words, cur, inWord = append(words, string(cur)), nil, false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%q: a ' is never closed", s)
			}
			cur, inWord = append(cur, s[i+1:i+1+j]...), true
			i += j + 1
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, fmt.Errorf("%q: a \" is never closed", s)
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '$' || s[i] == '`' {
					return nil, fmt.Errorf("%q: %c expands in a shell, and vdisk runs none", s, s[i])
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				cur = append(cur, s[i])
			}
		case c == '\\':
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					cur, inWord = append(cur, s[i]), true
				}
			}
		case strings.IndexByte("$`;|&<>()*?[~", c) >= 0 || c == '#' && !inWord:
			return nil, fmt.Errorf("%q: %c means something to a shell, and vdisk runs none (quote it if it is part of a value)", s, c)
		default:
			cur, inWord = append(cur, c), true
		}
	}
	if inWord {
		words = append(words, string(cur))
	}
	return words, nil
}
