package builtin_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// TestCOWFilterLeavesBaseImageUntouched: fio writes through NBD with a cow
// filter on partition 2; fio's verification (reads through the same
// export) sees the new data, and the base image's sha256 does not change.
func TestCOWFilterLeavesBaseImageUntouched(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fio")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	before := testsupport.HashFile(t, gpt)
	overlay := filepath.Join(dir, "overlay.img")
	sys := testworld.FilterSystem(t, vdisk.Options{Requestor: "test"}, gpt, "cow:on=gpt@2,overlay="+overlay)
	uri := testworld.ServeSystem(t, sys, false) + "/gpt@2"
	code, jobs, out := testworld.Fio(t, "--name=cow", "--ioengine=nbd", "--uri="+uri, "--rw=randwrite", "--bs=4k",
		"--iodepth=8", "--size=4M", "--verify=crc32c", "--do_verify=1", "--continue_on_error=verify", "--verify_state_save=0", "--runtime=30")
	if code != 0 || len(jobs) != 1 || jobs[0].Error != 0 || jobs[0].TotalErr == nil || *jobs[0].TotalErr != 0 || jobs[0].Read.Bytes != 4*testsupport.MiB {
		t.Fatalf("fio through cow: exit %d, jobs %+v\n%s", code, jobs, out)
	}
	if testsupport.HashFile(t, gpt) != before {
		t.Fatal("the base image changed under the cow filter")
	}
	if fi, err := os.Stat(overlay); err != nil || testsupport.Blocks(t, overlay) == 0 {
		t.Fatalf("overlay %v: %v (blocks %d)", fi, err, testsupport.Blocks(t, overlay))
	}
}

// TestCryptFilterStoresNoPlaintext: data copied in through a crypt filter
// reads back identical through it, and the image holds none of it.
func TestCryptFilterStoresNoPlaintext(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdcopy")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, bytes.Repeat([]byte{0x5a, 0x13}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	sys := testworld.FilterSystem(t, vdisk.Options{Requestor: "test"}, gpt, "crypt:key-file="+key)
	uri := testworld.ServeSystem(t, sys, false) + "/gpt@1"
	marker := []byte("PLAINTEXT-MARKER-0123456789-")
	plain := bytes.Repeat(marker, (1<<20)/len(marker)+1)[:1<<20]
	src := filepath.Join(dir, "plain.bin")
	if err := os.WriteFile(src, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	testsupport.Must(t, "nbdcopy", src, uri)
	back := filepath.Join(dir, "back.bin")
	testsupport.Must(t, "nbdcopy", "--no-extents", uri, back)
	got, _ := os.ReadFile(back)
	if !bytes.Equal(got[:len(plain)], plain) {
		t.Fatal("data read back through crypt differs")
	}
	img, _ := os.ReadFile(gpt)
	if bytes.Contains(img, marker[:16]) {
		t.Fatal("the image holds plaintext written through the crypt filter")
	}
}

// TestFaultsFilterGivesEIOAndTheConnectionSurvives: injected read errors
// reach the NBD client as EIO replies, and the same connection goes on
// serving writes.
func TestFaultsFilterGivesEIOAndTheConnectionSurvives(t *testing.T) {
	t.Parallel()
	py := testsupport.NeedNbdsh(t)
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	sys := testworld.FilterSystem(t, vdisk.Options{Requestor: "test"}, gpt, "faults:read-error=1,seed=7")
	uri := testworld.ServeSystem(t, sys, false) + "/gpt@1"
	got := testworld.Nbdsh(t, py, uri, `
r1 = tryop(h.pread, 4096, 0)
w = tryop(h.pwrite, b"x" * 4096, 0)
r2 = tryop(h.pread, 512, 8192)
f = tryop(h.flush)
print(json.dumps({"r1": r1, "w": w, "r2": r2, "f": f}))
`)
	testworld.Expect(t, "faults", got, map[string]any{"r1": "EIO", "w": "ok", "r2": "EIO", "f": "ok"})
}

// TestScanAtDiskLevelRefusesASignatureWrittenOverNBD: with scan attached to
// the disk stack, an NBD write carrying the signature gets EPERM (from
// STATUS_ACCESS_DENIED) and leaves the image unchanged; clean data passes.
func TestScanAtDiskLevelRefusesASignatureWrittenOverNBD(t *testing.T) {
	t.Parallel()
	py := testsupport.NeedNbdsh(t)
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	sys := testworld.FilterSystem(t, vdisk.Options{Requestor: "test"}, gpt, "scan:sig=EICAR-TEST,on=gpt")
	before := testsupport.HashFile(t, gpt)
	uri := testworld.ServeSystem(t, sys, false) + "/gpt@1"
	got := testworld.Nbdsh(t, py, uri, `
bad = tryop(h.pwrite, b"....EICAR-TEST...." + b"\0" * 494, 0)
print(json.dumps({"bad": bad}))
`)
	testworld.Expect(t, "scan", got, map[string]any{"bad": "EPERM"})
	if testsupport.HashFile(t, gpt) != before {
		t.Fatal("a refused write changed the image")
	}
	got = testworld.Nbdsh(t, py, uri, `print(json.dumps({"good": tryop(h.pwrite, b"clean" + b"\0" * 507, 0)}))`)
	testworld.Expect(t, "scan", got, map[string]any{"good": "ok"})
}

// TestTraceFilterRecordsNBDTrafficWithItsRequestor: the disk-level trace
// records NBD reads and writes with the client's address, offsets in disk
// terms, and with a tiny ring the sequence numbers show the gap where
// records were dropped.
func TestTraceFilterRecordsNBDTrafficWithItsRequestor(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "nbdcopy")
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	sys := testworld.FilterSystem(t, vdisk.Options{Requestor: "test", RingSize: 16}, gpt, "trace")
	uri := testworld.ServeSystem(t, sys, false) + "/gpt@1"
	src := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(src, testsupport.Random(4<<20, 3, false), 0o644); err != nil {
		t.Fatal(err)
	}
	testsupport.Must(t, "nbdcopy", "--request-size=65536", src, uri)
	recs, next := sys.Ring().Since(0)
	if len(recs) != 16 || recs[0].Seq <= 1 || next <= 17 {
		t.Fatalf("ring of 16 after >64 writes: %d records from seq %d, next %d: no gap shown", len(recs), recs[0].Seq, next)
	}
	writes := 0
	for i, r := range recs {
		if i > 0 && r.Seq != recs[i-1].Seq+1 {
			t.Fatalf("records out of order: %d then %d", recs[i-1].Seq, r.Seq)
		}
		if r.Layer != "disk" || !strings.HasPrefix(r.Requestor, "127.0.0.1:") && r.Requestor != "test" {
			t.Fatalf("record %+v", r)
		}
		if r.Operation == iomgr.MajorWrite.String() {
			writes++
			if r.Status != "STATUS_SUCCESS" || r.Length <= 0 || r.Offset < 1<<20 {
				t.Fatalf("write record %+v: want a disk offset inside partition 1 (≥ 1 MiB)", r)
			}
		}
	}
	if writes == 0 {
		t.Fatalf("no write records among %v", recs)
	}
	_ = strconv.Itoa
}

// TestMonitorSeesFileIOAtVolumeLevelAndMetadataAsDirectIO: the monitor
// minifilter records file operations with their paths, the FAT driver's
// metadata writes as DIRECT I/O, and the disk trace the same traffic at disk
// level.
func TestMonitorSeesFileIOAtVolumeLevelAndMetadataAsDirectIO(t *testing.T) {
	sys, v, _ := testworld.FATSystem(t, vdisk.Options{Requestor: "test"}, "monitor", "trace")
	if err := v.WriteFile("hello.txt", []byte("hi there")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.ReadFile("hello.txt"); err != nil {
		t.Fatal(err)
	}
	// The FAT driver writes metadata lazily (a second later, or on a
	// flush): the dismount's flush sends it now.
	if err := v.Dismount(false); err != nil {
		t.Fatal(err)
	}
	recs, _ := sys.Ring().Since(0)
	var create, write, read, direct, disk bool
	for _, r := range recs {
		switch {
		case r.Layer == "volume" && r.Path == `\hello.txt` && r.Operation == "IRP_MJ_CREATE" && r.Requestor == "test":
			create = true
		case r.Layer == "volume" && r.Path == `\hello.txt` && r.Operation == "IRP_MJ_WRITE" && r.Length == 8:
			write = true
		case r.Layer == "volume" && r.Path == `\hello.txt` && r.Operation == "IRP_MJ_READ":
			read = true
		case r.Layer == "volume" && r.Path == "DIRECT I/O" && r.Operation == "IRP_MJ_WRITE":
			direct = true
		case r.Layer == "disk" && r.Operation == "IRP_MJ_WRITE":
			disk = true
		}
	}
	if !create || !write || !read || !direct || !disk {
		for _, r := range recs {
			t.Log(r)
		}
		t.Fatalf("create %v write %v read %v metadata %v disk %v", create, write, read, direct, disk)
	}
}

// TestScanRefusesASignatureWrittenThroughTheFSD: a file write carrying the
// signature fails with ACCESS_DENIED and leaves no file behind; a file that
// already holds the signature cannot be opened for reading.
func TestScanRefusesASignatureWrittenThroughTheFSD(t *testing.T) {
	_, v, path := testworld.FATSystem(t, vdisk.Options{}, "scan:sig=X5O-EICAR")
	err := v.WriteFile("virus.com", []byte("prefix X5O-EICAR suffix"))
	if !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("write of a signature: %v", err)
	}
	if _, err := v.Stat("virus.com"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused file was left behind: %v", err)
	}
	if err := v.WriteFile("clean.txt", []byte("nothing to see")); err != nil {
		t.Fatal(err)
	}
	// A file written past the filter (by mtools) is caught on open for read.
	testsupport.NeedTool(t, "mcopy")
	if err := v.Dismount(false); err != nil {
		t.Fatal(err)
	}
	parts := testsupport.Sfdisk(t, path)
	src := filepath.Join(t.TempDir(), "inf.txt")
	os.WriteFile(src, []byte("....X5O-EICAR...."), 0o644)
	rc := filepath.Join(t.TempDir(), "mtoolsrc")
	os.WriteFile(rc, []byte("drive v: file=\""+path+"\" offset="+strconv.FormatInt(parts[0].Start, 10)+"\nmtools_skip_check=1\n"), 0o644)
	cmd := exec.Command("mcopy", src, "v:/INF.TXT")
	cmd.Env = append(os.Environ(), "MTOOLSRC="+rc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v %s", err, out)
	}
	if _, err := v.ReadFile("INF.TXT"); !errors.Is(err, iomgr.StatusAccessDenied) {
		t.Fatalf("open of an infected file: %v", err)
	}
	if data, err := v.ReadFile("clean.txt"); err != nil || string(data) != "nothing to see" {
		t.Fatalf("clean file: %q %v", data, err)
	}
}

// TestReadOnlyMinifilterRefusesEveryWrite: with readonly loaded, creates
// for writing, writes, renames, deletes and label changes fail with
// MEDIA_WRITE_PROTECTED; reads work.
func TestReadOnlyMinifilterRefusesEveryWrite(t *testing.T) {
	dir := t.TempDir()
	path := testworld.FATImage(t, dir, "16", 64<<20)
	sys := testworld.FilterSystem(t, vdisk.Options{}, path)
	v, _ := testworld.VolumeNamed(sys, "fat16@1", "test")
	if err := v.WriteFile("keep.txt", []byte("keep")); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.AddFilter("readonly"); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"create": v.WriteFile("new.txt", []byte("x")),
		"mkdir":  v.Mkdir("d"),
		"rename": v.Rename("keep.txt", "moved.txt", false),
		"remove": v.Remove("keep.txt"),
		"label":  v.SetLabel("NOPE"),
	} {
		if !errors.Is(err, iomgr.StatusMediaWriteProtected) {
			t.Errorf("%s under readonly: %v", what, err)
		}
	}
	if data, err := v.ReadFile("keep.txt"); err != nil || string(data) != "keep" {
		t.Fatalf("read under readonly: %q %v", data, err)
	}
}
