package partition

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The seed corpora in testdata/fuzz are small tables made by this package
// (go test -run TestFuzzSeeds -genseeds ./partition/ rewrites them) plus any
// crasher the fuzzers found.
var genSeeds = flag.Bool("genseeds", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// Fuzz inputs describe a disk as head, gap and tail: head at the start,
// gap zero bytes (at most 1 MiB), tail at the end. Disks are mostly zeros,
// and small inputs keep mutation and minimisation fast. Inputs are still
// kilobytes, so run the fuzzers with a short minimisation budget, e.g.
//
//	go test -fuzz=FuzzReadGPT -fuzztime=60s -fuzzminimizetime=1s ./partition/
//
// (the default of 60 s per new input leaves little time for fuzzing).
func fuzzDisk(head []byte, gap uint32, tail []byte) []byte {
	d := make([]byte, 0, len(head)+int(min(gap, 1<<20))+len(tail))
	d = append(d, head...)
	d = append(d, make([]byte, min(gap, 1<<20))...)
	return append(d, tail...)
}

// FuzzReadMBR feeds arbitrary disks, read with a fixed or detected sector
// size; its seeds are MBRs with EBR chains.
func FuzzReadMBR(f *testing.F) {
	f.Fuzz(func(t *testing.T, head []byte, gap uint32, tail []byte, sel uint8) {
		checkRead(t, fuzzDisk(head, gap, tail), []int{0, 512, 1024, 2048, 4096}[sel%5])
	})
}

// FuzzReadGPT feeds arbitrary disks to Read's detection; its seeds are GPTs
// with 512- and 4096-byte sectors.
func FuzzReadGPT(f *testing.F) {
	f.Fuzz(func(t *testing.T, head []byte, gap uint32, tail []byte) {
		checkRead(t, fuzzDisk(head, gap, tail), 0)
	})
}

// checkRead: Read must fail only with ErrCorrupt (the disk is in memory, so
// there are no I/O errors), and whatever it accepts, Write must store and
// Read must give back unchanged.
func checkRead(t *testing.T, data []byte, ss int) {
	d := memDisk(data)
	tab, _, err := ReadSectorSize(d, int64(len(d)), ss)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Read failed without ErrCorrupt: %v", err)
		}
		return
	}
	if err := tab.Write(d); err != nil {
		t.Fatalf("Write rejects what Read accepted: %v\n%+v", err, tab)
	}
	again, _, err := ReadSectorSize(d, int64(len(d)), ss)
	if err != nil {
		t.Fatalf("Read after Write: %v\n%+v", err, tab)
	}
	if !reflect.DeepEqual(again, tab) {
		t.Fatalf("round trip changed the table:\n%+v\n%+v", tab, again)
	}
}

func TestFuzzSeeds(t *testing.T) {
	if !*genSeeds {
		t.Skip("run with -genseeds to rewrite testdata/fuzz")
	}
	small := func(kind Kind, size int64, ss int, n int, psize int64) memDisk {
		specs := make([]Spec, n)
		for i := range specs {
			specs[i] = Spec{Size: psize, Type: []string{"esp", "fat32", "linux", "raw", "fat16", "fat12"}[i%6], Label: fmt.Sprint("p", i)}
		}
		tab, err := New(kind, size, ss, specs, &Options{Rand: seeded(uint64(n)), Align: int64(ss)})
		if err != nil {
			t.Fatal(err)
		}
		return writeMem(t, tab)
	}
	// A GPT with a 4-entry array keeps the seed small.
	smallGPT := func(ss int, sectors int64) memDisk {
		s := int64(ss)
		tab := &Table{Kind: GPT, SectorSize: ss, DiskSize: sectors * s, DiskGUID: GUIDLinux,
			EntryCount: 4, EntrySize: 128, FirstUsableLBA: 3, LastUsableLBA: sectors - 3,
			Partitions: []Partition{
				{Index: 1, Number: 1, Start: 3 * s, Size: s, Type: Type{GPT: GUIDESP}, Name: "EFI", GUID: GUIDBasicData, Attributes: 5},
				{Index: 2, Number: 3, Start: 5 * s, Size: s, Type: Type{GPT: GUIDLinux}, Name: "Données"},
			}}
		return writeMem(t, tab)
	}
	fat := make(memDisk, 2048)
	copy(fat, []byte{0xeb, 0x3c, 0x90, 'm', 'k', 'f', 's', '.', 'f', 'a', 't', 0x00, 0x02, 4, 1, 0, 2})
	fat[510], fat[511] = 0x55, 0xaa
	// mkfs.fat --mbr: the boot sector's table has one partition, the
	// volume itself at sector 0.
	fatMBR := append(memDisk(nil), fat...)
	fatMBR[446], fatMBR[446+4], fatMBR[446+12] = 0x80, 0x06, 4
	damaged := smallGPT(512, 16)
	damaged[512+16] ^= 1

	mbr := map[string]memDisk{
		"mbr-primaries":   small(MBR, 8192, 512, 3, 1024),
		"mbr-logicals":    small(MBR, 12*512, 512, 7, 512),
		"mbr-4096":        small(MBR, 8*4096, 4096, 5, 4096),
		"superfloppy":     fat,
		"superfloppy-mbr": fatMBR,
	}
	gpt := map[string]memDisk{
		"gpt-512":         smallGPT(512, 16),
		"gpt-4096":        smallGPT(4096, 8),
		"gpt-backup-only": damaged,
		"gpt-128-entries": small(GPT, 72*512, 512, 3, 512),
	}
	write := func(fuzzer, name string, vals ...string) {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := "go test fuzz v1\n"
		for _, v := range vals {
			s += v + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, d := range mbr {
		sel := 0
		if name == "mbr-4096" {
			sel = 4
		}
		write("FuzzReadMBR", name, append(split(d), fmt.Sprintf("uint8(%d)", sel))...)
	}
	for name, d := range gpt {
		write("FuzzReadGPT", name, split(d)...)
	}
}

// split encodes a disk for the fuzzers, cutting out its longest run of
// zeros.
func split(d []byte) []string {
	best, bestLen := len(d), 0
	for i := 0; i < len(d); {
		j := i
		for j < len(d) && d[j] == 0 {
			j++
		}
		if j-i > bestLen {
			best, bestLen = i, j-i
		}
		i = j + 1
	}
	return []string{fmt.Sprintf("[]byte(%q)", d[:best]), fmt.Sprintf("uint32(%d)", bestLen),
		fmt.Sprintf("[]byte(%q)", d[best+bestLen:])}
}

// TestFuzzSeedsParse keeps the seeds meaningful: each is a table Read
// accepts, so fuzzing starts from the interesting paths.
func TestFuzzSeedsParse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "seed-*"))
	if len(files) == 0 {
		t.Fatal("no fuzz seeds")
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		head, err1 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		gap, err2 := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[2], "uint32("), ")"), 10, 32)
		tail, err3 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[3], "[]byte("), ")"))
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		data := fuzzDisk([]byte(head), uint32(gap), []byte(tail))
		ss := 0
		if strings.HasSuffix(file, "4096") && strings.Contains(file, "MBR") {
			ss = 4096
		}
		tab, _, err := ReadSectorSize(memDisk(data), int64(len(data)), ss)
		want := None
		switch {
		case strings.Contains(file, "seed-mbr"):
			want = MBR
		case strings.Contains(file, "seed-gpt"):
			want = GPT
		}
		if err != nil || tab.Kind != want || (want != None && len(tab.Partitions) == 0) {
			t.Errorf("%s: Read = %+v, %v", file, tab, err)
		}
	}
}
