package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestProgressSilentUnlessShown: with show false (stderr not a terminal)
// or nothing to count there is no bar, and a nil bar ignores every call,
// so scripts and CI logs get no control characters.
func TestProgressSilentUnlessShown(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range []*progress{newProgress(&buf, false, 100, "copying"), newProgress(&buf, true, 0, "copying")} {
		if p != nil {
			t.Fatalf("newProgress made a bar that should not exist")
		}
		p.add(10)
		p.set(10, 100)
		p.finish(nil)
	}
	r := &countingReader{r: strings.NewReader("abc"), p: nil}
	if b, err := io.ReadAll(r); err != nil || string(b) != "abc" {
		t.Fatalf("countingReader without a bar: %q, %v", b, err)
	}
	if buf.Len() != 0 {
		t.Fatalf("silent progress wrote %q", buf.String())
	}
}

// TestProgressCountsBytes: the bar counts what a countingReader passes,
// in IEC units, and ends its line when done.
func TestProgressCountsBytes(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true, 3<<20, "copying")
	if p == nil {
		t.Fatal("no bar")
	}
	n, err := io.Copy(io.Discard, &countingReader{r: bytes.NewReader(make([]byte, 3<<20)), p: p})
	if err != nil || n != 3<<20 {
		t.Fatalf("copy: %d, %v", n, err)
	}
	if got := p.bar.State().CurrentBytes; got != 3<<20 {
		t.Fatalf("bar counted %v bytes, want %d", got, 3<<20)
	}
	p.finish(nil)
	out := buf.String()
	for _, want := range []string{"copying", "100%", "3.0/3.0 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q: %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("bar output does not end its line: %q", out)
	}
}

// TestProgressSetFollowsTotal: format reports absolute counts and a total
// known only at its first report; the bar takes both.
func TestProgressSetFollowsTotal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true, 1, "formatting")
	p.set(512, 2048)
	if s := p.bar.State(); s.Max != 2048 || s.CurrentBytes != 512 {
		t.Fatalf("after set(512, 2048): max %d, current %v", s.Max, s.CurrentBytes)
	}
	p.set(2048, 2048)
	p.finish(nil)
	if !strings.Contains(buf.String(), "100%") {
		t.Fatalf("bar output: %q", buf.String())
	}
}
