package ondisk

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func odSN(s string) ShortName {
	var sn ShortName
	copy(sn[:], s)
	return sn
}

// Checksums of short names as mtools wrote them next to their long names
// (read from the images' raw bytes).
func TestChecksumVectors(t *testing.T) {
	for _, c := range []struct {
		name ShortName
		sum  byte
	}{
		{odSN("HELLOW~1HTM"), 0x0F},
		{odSN("FOO     TXT"), 0x65},
		{odSN("EMOJI_~1TXT"), 0xF5},
		{odSN("\xe5LONGN~1TXT"), 0xF1}, // stored as 0x05: the checksum covers the stored byte
	} {
		if got := c.name.Checksum(); got != c.sum {
			t.Errorf("Checksum(%q) = %#02x, want %#02x", c.name[:], got, c.sum)
		}
	}
}

func TestGenerateShortName(t *testing.T) {
	for _, c := range []struct {
		long  string
		short string // 11 bytes as stored
		cf    CaseFlags
		lfn   bool
	}{
		{"README", "README     ", 0, false},
		{"FOO.TXT", "FOO     TXT", 0, false},
		{"foo.txt", "FOO     TXT", CaseLowerBase | CaseLowerExt, false},
		{"foo.TXT", "FOO     TXT", CaseLowerBase, false},
		{"FOO.txt", "FOO     TXT", CaseLowerExt, false},
		{"makefile", "MAKEFILE   ", CaseLowerBase, false},
		{"A1$%'-_@.~`!", "A1$%'-_@~`!", 0, false},
		{"(x){y}^#&", "", 0, true},                   // 9 characters: too long for a base
		{"Foo.txt", "FOO     TXT", 0, true},          // mixed case: long name, no tail
		{"foo.Txt", "FOO     TXT", 0, true},          // mixed-case extension
		{"hello world.html", "HELLOW~1HTM", 0, true}, // as mtools and Windows
		{"file.html", "FILE~1  HTM", 0, true},        // extension cut: a tail
		{"x.tar.gz", "XTAR~1  GZ ", 0, true},
		{".bashrc", "BASHRC~1   ", 0, true},
		{"...dots", "DOTS~1     ", 0, true},
		{"a+b=c;d [1].txt", "A_B_C_~1TXT", 0, true},
		{"résumé.doc", "R_SUM_~1DOC", 0, true}, // non-ASCII becomes '_' (lossy)
		{"日本語.txt", "___~1   TXT", 0, true},
		{"UPPERCASELONGNAME.TEXT", "UPPERC~1TEX", 0, true},
		{" x", "X~1        ", 0, true},
		{"two..dots", "TWO~1   DOT", 0, true},
		{"a.b.c.d", "ABC~1   D  ", 0, true},
		{"ab cd.e f", "ABCD~1  EF ", 0, true},
		{"x.", "", 0, false}, // invalid: trailing dot (CleanLongName first)
	} {
		sn, cf, lfn, err := GenerateShortName(c.long, func(ShortName) bool { return false })
		if c.short == "" {
			if !lfn && err == nil {
				t.Errorf("%q: want a long name or an error, got %q", c.long, sn[:])
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.long, err)
			continue
		}
		if string(sn[:]) != c.short || cf != c.cf || lfn != c.lfn {
			t.Errorf("%q: got %q case %#x lfn %v, want %q case %#x lfn %v", c.long, sn[:], cf, lfn, c.short, c.cf, c.lfn)
		}
		if !lfn && sn.Format(nil, cf) != c.long {
			t.Errorf("%q: short name displays as %q", c.long, sn.Format(nil, cf))
		}
	}
}

// Collisions: ~1 to ~4, then the hashed form (2 characters, 4 hex digits,
// ~1), and ~2.. when a hashed name is taken too; every name distinct.
func TestGenerateShortNameCollisions(t *testing.T) {
	have := map[ShortName]bool{}
	exists := func(s ShortName) bool { return have[s] }
	hashed := regexp.MustCompile(`^LO[0-9A-F]{4}~1TXT$`)
	for i := 0; i < 50; i++ {
		long := fmt.Sprintf("Long File Name %d.txt", i)
		sn, _, lfn, err := GenerateShortName(long, exists)
		if err != nil || !lfn {
			t.Fatalf("%q: %v lfn %v", long, err, lfn)
		}
		switch {
		case i < 4:
			if want := fmt.Sprintf("LONGFI~%dTXT", i+1); string(sn[:]) != want {
				t.Errorf("%q: %q, want %q", long, sn[:], want)
			}
		default:
			if !hashed.MatchString(string(sn[:])) {
				t.Errorf("%q: %q is not the hashed form", long, sn[:])
			}
		}
		if have[sn] {
			t.Fatalf("%q: %q already used", long, sn[:])
		}
		have[sn] = true
	}
	// A taken hashed name moves to ~2 of the same hash.
	long := "Long File Name X.txt"
	first, _, _, _ := GenerateShortName(long, exists)
	have[first] = true
	second, _, _, _ := GenerateShortName(long, exists)
	if string(second[:6]) != string(first[:6]) || string(second[6:8]) != "~2" {
		t.Errorf("after %q is taken: %q, want the same hash with ~2", first[:], second[:])
	}
	// An 8.3 name that is taken gets a tail and a long name.
	have[odSN("FOO     TXT")] = true
	sn, cf, lfn, err := GenerateShortName("foo.txt", exists)
	if err != nil || string(sn[:]) != "FOO~1   TXT" || cf != 0 || !lfn {
		t.Errorf("taken 8.3 name: %q %#x %v %v", sn[:], cf, lfn, err)
	}
}

// Work is bounded even when every candidate is taken.
func TestGenerateShortNameExhausted(t *testing.T) {
	calls := 0
	_, _, _, err := GenerateShortName("some long name.txt", func(ShortName) bool { calls++; return true })
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want ErrNoSpace", err)
	}
	if calls > 1+4+9<<16 {
		t.Errorf("%d candidates tried", calls)
	}
}

// Typical cost: a handful of existence checks per name, however full the
// directory (no rescans).
func TestGenerateShortNameLookups(t *testing.T) {
	have := map[ShortName]bool{}
	calls := 0
	exists := func(s ShortName) bool { calls++; return have[s] }
	const n = 5000
	for i := 0; i < n; i++ {
		sn, _, _, err := GenerateShortName(fmt.Sprintf("a long document name %05d.txt", i), exists)
		if err != nil {
			t.Fatal(err)
		}
		have[sn] = true
	}
	if avg := float64(calls) / n; avg > 7 {
		t.Errorf("%.1f existence checks per name", avg)
	}
}

func TestValidateLongName(t *testing.T) {
	good := []string{"a", "a b", " leading", "x.y.z", "日本語", "emoji 😀", "semi;colon+plus=eq[]", strings.Repeat("x", 255),
		strings.Repeat("😀", 127) + "x"}
	for _, n := range good {
		if err := ValidateLongName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	bad := []string{"", ".", "..", "a*b", "a?b", "a/b", "a\\b", "a:b", "a<b", "a>b", "a|b", `a"b`, "a\x01b", "a\x1fb",
		"trailing.", "trailing ", strings.Repeat("x", 256), strings.Repeat("😀", 128), "bad\xffutf8"}
	for _, n := range bad {
		err := ValidateLongName(n)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("%q: err = %v, want ErrInvalidName", n, err)
		}
		if _, _, _, gerr := GenerateShortName(n, func(ShortName) bool { return false }); !errors.Is(gerr, ErrInvalidName) {
			t.Errorf("GenerateShortName(%q) = %v", n, gerr)
		}
	}
}

func TestCleanLongName(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"foo", "foo"},
		{"foo.", "foo"},
		{"foo. . .", "foo"},
		{"foo  ", "foo"},
		{" foo", " foo"},
		{"a.b", "a.b"},
		{"...", ""},
		{".", ""},
		{"..", ""},
		{"", ""},
		{"a*.", ""},
	} {
		got, err := CleanLongName(c.in)
		if c.out == "" {
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("%q: got %q, %v; want ErrInvalidName", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.out {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.out)
		}
	}
}

func TestParseShortName(t *testing.T) {
	for _, c := range []struct {
		in    string
		short string
		cf    CaseFlags
		ok    bool
	}{
		{"A", "A          ", 0, true},
		{"ABCDEFGH.IJK", "ABCDEFGHIJK", 0, true},
		{"abcdefgh.ijk", "ABCDEFGHIJK", CaseLowerBase | CaseLowerExt, true},
		{"1.2", "1       2  ", 0, true},
		{"ABCDEFGHI", "", 0, false},
		{"A.BCDE", "", 0, false},
		{"A.", "", 0, false},
		{".A", "", 0, false},
		{"A.B.C", "", 0, false},
		{"A B", "", 0, false},
		{"Ab", "", 0, false},
		{"A+B", "", 0, false},
		{"É", "", 0, false},
	} {
		sn, cf, ok := ParseShortName(c.in)
		if ok != c.ok || (ok && (string(sn[:]) != c.short || cf != c.cf)) {
			t.Errorf("%q: %q %#x %v, want %q %#x %v", c.in, sn[:], cf, ok, c.short, c.cf, c.ok)
		}
	}
}

func TestShortNameFormat(t *testing.T) {
	for _, c := range []struct {
		sn   string
		cp   *CodePage
		cf   CaseFlags
		want string
	}{
		{"FOO     TXT", nil, 0, "FOO.TXT"},
		{"FOO     TXT", nil, CaseLowerBase, "foo.TXT"},
		{"FOO     TXT", nil, CaseLowerExt, "FOO.txt"},
		{"README     ", nil, CaseLowerBase | CaseLowerExt, "readme"},
		{"\xe5X         ", CodePage850, 0, "ÕX"},
		{"\xe5X         ", CodePage437, 0, "σX"},
		{"\x8fFOO       ", CodePage850, CaseLowerBase, "åfoo"},
		{".          ", nil, 0, "."},
		{"..         ", nil, 0, ".."},
	} {
		if got := odSN(c.sn).Format(c.cp, c.cf); got != c.want {
			t.Errorf("%q: %q, want %q", c.sn, got, c.want)
		}
	}
}

// FoldKey agrees with strings.EqualFold, including the letters whose case
// orbits leave ASCII (K/k/Kelvin sign, S/s/long s) and Greek sigma forms.
func TestFoldKey(t *testing.T) {
	words := []string{"", "a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "σ", "Σ", "ς", "é", "É", "ǅ", "ǆ", "Ǆ",
		"ß", "ẞ", "İ", "i", "I", "ı", "Foo.TXT", "foo.txt", "日本", "😀", "ﬀ", "FF", "\ufffd"}
	for _, a := range words {
		for _, b := range words {
			if eq, fk := strings.EqualFold(a, b), FoldKey(a) == FoldKey(b); eq != fk {
				t.Errorf("%q %q: EqualFold %v, FoldKey equal %v (%q %q)", a, b, eq, fk, FoldKey(a), FoldKey(b))
			}
		}
	}
	if FoldKey("Hello World.txt") != FoldKey("HELLO WORLD.TXT") || FoldKey("README") != "README" {
		t.Error("ASCII folding")
	}
	if !utf8.ValidString(FoldKey("abc\xff")) {
		t.Error("invalid UTF-8 key")
	}
}
