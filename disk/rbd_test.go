package disk

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRBD(t *testing.T) {
	good := []struct {
		in   string
		want RBDSpec
	}{
		{"rbd:rbd/disk", RBDSpec{Pool: "rbd", Image: "disk"}},
		{"rbd:rbd/disk@golden", RBDSpec{Pool: "rbd", Image: "disk", Snap: "golden"}},
		{"rbd:pool/ns/disk@2", RBDSpec{Pool: "pool", Namespace: "ns", Image: "disk", Snap: "2"}},
		{"rbd:p/a:b", RBDSpec{Pool: "p", Image: "a:b"}}, // ':' is an ordinary character in Ceph names
		{"rbd:p q/ü", RBDSpec{Pool: "p q", Image: "ü"}},
	}
	for _, c := range good {
		got, err := ParseRBD(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRBD(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		if s := got.String(); s != c.in {
			t.Errorf("ParseRBD(%q).String() = %q", c.in, s)
		}
		if !IsRBD(c.in) {
			t.Errorf("IsRBD(%q) = false", c.in)
		}
	}
	bad := map[string]string{
		"disk.img":           `does not start with "rbd:"`,
		"RBD:rbd/disk":       `does not start with "rbd:"`,
		"rbd:":               "needs POOL/IMAGE",
		"rbd:disk":           "needs POOL/IMAGE",
		"rbd:/disk":          "pool name is empty",
		"rbd:rbd/":           "image name is empty",
		"rbd:rbd/disk@":      "snapshot name after '@' is empty",
		"rbd:rbd/disk@a@b":   "more than one '@'",
		"rbd:a/b/c/d":        "needs POOL/IMAGE",
		"rbd:a//d":           "namespace name is empty",
		"rbd:rbd/di\x00sk":   "control character",
		"rbd:rbd/disk@s\n":   "control character",
		"rbd:rbd@s/disk":     "snapshot name holds a '/'",
		"rbd:rbd/disk@s/x":   "snapshot name holds a '/'",
		"rbd:rbd/\x7fdisk":   "control character",
		"rbd:rbd/disk@snap@": "more than one '@'",
	}
	for in, why := range bad {
		_, err := ParseRBD(in)
		if !errors.Is(err, ErrRBDSpec) || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseRBD(%q) = %v; want ErrRBDSpec saying %q", in, err, why)
		}
	}
	if IsRBD("disk.img") {
		t.Error(`IsRBD("disk.img") = true`)
	}
}

// A spec built by hand is checked as strictly as a parsed one before it
// reaches librbd.
func TestRBDSpecCheck(t *testing.T) {
	for _, s := range []RBDSpec{
		{Pool: "rbd", Image: "a/b"},
		{Pool: "rbd", Image: "a@b"},
		{Pool: "", Image: "a"},
		{Pool: "rbd", Image: "a", Snap: "x/y"},
	} {
		if _, err := OpenRBD(s, RBDOptions{}); !errors.Is(err, ErrRBDSpec) {
			t.Errorf("OpenRBD(%+v) = %v, want ErrRBDSpec", s, err)
		}
	}
	if err := CreateRBD(RBDSpec{Pool: "rbd", Image: "a", Snap: "s"}, 1<<20, RBDOptions{}); err == nil {
		t.Error("CreateRBD of a snapshot spec succeeded")
	}
	if err := CreateRBD(RBDSpec{Pool: "rbd", Image: "a"}, 0, RBDOptions{}); err == nil {
		t.Error("CreateRBD of size 0 succeeded")
	}
	if err := SnapshotRBD(RBDSpec{Pool: "rbd", Image: "a"}, true, RBDOptions{}); err == nil {
		t.Error("SnapshotRBD without a snapshot name succeeded")
	}
	if err := CloneRBD(RBDSpec{Pool: "rbd", Image: "a"}, RBDSpec{Pool: "rbd", Image: "b"}, RBDOptions{}); err == nil {
		t.Error("CloneRBD from a head (not a snapshot) succeeded")
	}
	if err := CloneRBD(RBDSpec{Pool: "rbd", Image: "a", Snap: "s"}, RBDSpec{Pool: "rbd", Image: "b", Snap: "t"}, RBDOptions{}); err == nil {
		t.Error("CloneRBD to a snapshot spec succeeded")
	}
}

// FuzzParseRBD: ParseRBD never panics, accepts only what it documents, and
// what it accepts prints back to the same operand. Seeds are in
// testdata/fuzz/FuzzParseRBD.
func FuzzParseRBD(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		spec, err := ParseRBD(in)
		if err != nil {
			if !errors.Is(err, ErrRBDSpec) {
				t.Fatalf("ParseRBD(%q) failed without ErrRBDSpec: %v", in, err)
			}
			return
		}
		if s := spec.String(); s != in {
			t.Fatalf("ParseRBD(%q).String() = %q", in, s)
		}
		for _, name := range []string{spec.Pool, spec.Image, spec.Namespace, spec.Snap} {
			if strings.ContainsAny(name, "/@\x00") {
				t.Fatalf("ParseRBD(%q) = %+v: a name holds '/', '@' or NUL", in, spec)
			}
		}
		if spec.Pool == "" || spec.Image == "" {
			t.Fatalf("ParseRBD(%q) = %+v: empty pool or image", in, spec)
		}
		if err := spec.check(); err != nil {
			t.Fatalf("ParseRBD(%q) = %+v, which check refuses: %v", in, spec, err)
		}
	})
}

// fakeImage answers extents from a fixed list, in the order given; nothing
// else is called by Allocation.
type fakeImage struct {
	rbdImage
	reports []struct {
		off, n int64
		data   bool
	}
}

func (f *fakeImage) extents(off, length int64, fn func(off, length int64, data bool)) error {
	for _, r := range f.reports {
		fn(r.off, r.n, r.data)
	}
	return nil
}

// Allocation is the union of what librbd reports as data, whatever the
// order and overlap of its reports (a clone's own extents may come after
// its parent's), clipped to the range asked; the rest is holes.
func TestRBDAllocationMergesReports(t *testing.T) {
	img := &fakeImage{}
	add := func(off, n int64, data bool) {
		img.reports = append(img.reports, struct {
			off, n int64
			data   bool
		}{off, n, data})
	}
	add(8<<20, 4<<20, true)  // the parent's, first
	add(24<<20, 4<<20, true) // the parent's
	add(0, 4<<20, true)      // the clone's own, after them
	add(16<<20, 4<<20, true)
	add(10<<20, 1<<20, false) // zero, inside data: data wins
	add(26<<20, 4<<20, true)  // overlapping
	add(40<<20, 1<<20, false) // zero
	s := &RBDStore{spec: RBDSpec{Pool: "p", Image: "i"}, size: 48 << 20, img: img}
	ext, err := s.Allocation(1<<20, 46<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []Extent{
		{Offset: 1 << 20, Length: 3 << 20},
		{Offset: 4 << 20, Length: 4 << 20, Hole: true, Zero: true},
		{Offset: 8 << 20, Length: 4 << 20},
		{Offset: 12 << 20, Length: 4 << 20, Hole: true, Zero: true},
		{Offset: 16 << 20, Length: 4 << 20},
		{Offset: 20 << 20, Length: 4 << 20, Hole: true, Zero: true},
		{Offset: 24 << 20, Length: 6 << 20},
		{Offset: 30 << 20, Length: 17 << 20, Hole: true, Zero: true},
	}
	if !equalExtents(ext, want) {
		t.Fatalf("Allocation = %v\nwant %v", ext, want)
	}
}
