package export_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// End-to-end: nbdinfo (libnbd) lists the exports a System serves
// (names, sizes, flags) and maps their allocation, checked against sfdisk
// and qemu-img map of the image file.

// TestE2ENbdinfoExports: `nbdinfo --list --json` shows every export of a GPT
// image and an MBR image with logical partitions (names, sizes from sfdisk,
// 512-byte minimum block), and `nbdinfo --json` of each export reports the
// capabilities, with is_read_only matching the read-only option.
func TestE2ENbdinfoExports(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdinfo")
	testsupport.NeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt, mbr := testworld.GPT(t, dir), testworld.MBR(t, dir)
	type want struct {
		name string
		size int64
	}
	var wants []want
	for i, path := range []string{gpt, mbr} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(path), ".img")
		wants = append(wants, want{name, fi.Size()})
		if i == 0 {
			wants = append(wants, want{"", fi.Size()})
		}
		for j, p := range testsupport.Sfdisk(t, path) {
			wants = append(wants, want{fmt.Sprintf("%s@%d", name, j+1), p.Size})
		}
	}
	if len(wants) != 2+1+3+5 {
		t.Fatalf("sfdisk sees %d exports' worth of partitions: %v", len(wants), wants)
	}

	sys, _ := testworld.System(t, 0, false, gpt, mbr)
	rw := testworld.ServeSystem(t, sys, false)
	ro := testworld.ServeSystem(t, sys, true)
	for _, srv := range []struct {
		uri string
		ro  bool
	}{{rw, false}, {ro, true}} {
		list := testworld.Nbdinfo(t, "--list", srv.uri)
		var got, exp []string
		for _, e := range list {
			got = append(got, fmt.Sprintf("%q size=%d min=%d ro=%v flush=%v multi-conn=%v cache=%v fua=%v trim=%v zero=%v",
				e.Name, e.Size, e.MinBlock, e.ReadOnly, e.CanFlush, e.CanMultiConn, e.CanCache, e.CanFUA, e.CanTrim, e.CanZero))
		}
		for _, w := range wants {
			rw := !srv.ro
			exp = append(exp, fmt.Sprintf("%q size=%d min=512 ro=%v flush=true multi-conn=true cache=true fua=%v trim=%v zero=%v",
				w.name, w.size, srv.ro, rw, rw, rw))
		}
		if strings.Join(got, "\n") != strings.Join(exp, "\n") {
			t.Errorf("nbdinfo --list %s:\n%s\nwant\n%s", srv.uri, strings.Join(got, "\n"), strings.Join(exp, "\n"))
		}
		for i, w := range wants {
			if srv.ro && i%3 != 0 {
				continue // each nbdinfo costs libnbd's 200 ms cork; --list checked them all
			}
			uri := srv.uri + "/" + w.name
			one := testworld.Nbdinfo(t, uri)
			if len(one) != 1 {
				t.Fatalf("nbdinfo %s: %d exports", uri, len(one))
			}
			e := one[0]
			writable := !srv.ro
			if e.Name != w.name || e.Size != w.size || e.ReadOnly != srv.ro || !e.CanFlush || !e.CanMultiConn || !e.CanCache ||
				e.CanFUA != writable || e.CanTrim != writable || e.CanZero != writable {
				t.Errorf("nbdinfo %s: %+v (read-only option %v)", uri, e, srv.ro)
			}
		}
	}
}

// TestE2ENbdinfoMap: data written into a sparse image with os.File.WriteAt
// shows up in `nbdinfo --map` exactly where it is: for a partition export
// at partition-relative offsets, for the whole disk as qemu-img map sees the
// file.
func TestE2ENbdinfoMap(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdinfo")
	testsupport.NeedTool(t, "sfdisk")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	parts := testsupport.Sfdisk(t, gpt)
	p2, p3 := parts[1], parts[2]
	const k = 1 << 10
	writes := []struct{ off, n int64 }{{64 * k, 128 * k}, {testsupport.MiB, 4 * k}, {p2.Size - 8*k, 8 * k}}
	for i, w := range writes {
		testsupport.WriteAt(t, gpt, testsupport.Random(int(w.n), byte(i+1), false), p2.Start+w.off)
	}
	testsupport.WriteAt(t, gpt, testsupport.Random(64*k, 9, false), p3.Start+512*k)

	sys, _ := testworld.System(t, 0, false, gpt)
	uri := testworld.ServeSystem(t, sys, true)

	got := testworld.NbdinfoMap(t, uri+"/gpt@2")
	want := []testworld.Extent{{Offset: 0, Length: 64 * k, Type: 3}, {Offset: 64 * k, Length: 128 * k, Type: 0}, {Offset: 192 * k, Length: testsupport.MiB - 192*k, Type: 3}, {Offset: testsupport.MiB, Length: 4 * k, Type: 0}, {Offset: testsupport.MiB + 4*k, Length: p2.Size - 8*k - testsupport.MiB - 4*k, Type: 3}, {Offset: p2.Size - 8*k, Length: 8 * k, Type: 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("nbdinfo --map of partition 2:\n got %v\nwant %v", got, want)
	}
	got = testworld.NbdinfoMap(t, uri+"/gpt@3")
	want = []testworld.Extent{{Offset: 0, Length: 512 * k, Type: 3}, {Offset: 512 * k, Length: 64 * k, Type: 0}, {Offset: 576 * k, Length: p3.Size - 576*k, Type: 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("nbdinfo --map of partition 3:\n got %v\nwant %v", got, want)
	}

	whole := testworld.NbdinfoMap(t, uri+"/gpt")
	for _, w := range writes {
		if typ := testworld.TypeAt(whole, p2.Start+w.off, w.n); typ != 0 {
			t.Errorf("whole disk map: data written at %d+%d has type %d", p2.Start+w.off, w.n, typ)
		}
	}
	if typ := testworld.TypeAt(whole, p2.Start+192*k, testsupport.MiB-192*k); typ != 3 {
		t.Errorf("whole disk map: a hole in partition 2 has type %d", typ)
	}
	t.Run("against qemu-img map", func(t *testing.T) {
		testsupport.NeedTool(t, "qemu-img")
		if q := testworld.QemuMap(t, gpt); fmt.Sprint(q) != fmt.Sprint(whole) {
			t.Errorf("nbdinfo --map of the whole disk:\n %v\nqemu-img map of the file:\n %v", whole, q)
		}
	})
}
