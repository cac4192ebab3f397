package export_test

import (
	"strconv"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// End-to-end: fio's nbd engine writes and verifies over several
// connections at once.

// TestE2EFioVerifyMultiConn: fio's nbd engine, four jobs each with its own
// connection and its own 4 MiB region of a logical MBR partition, writes
// random 4 KiB blocks with crc32c checksums and reads them back: no verify
// error. Then one byte of the image is changed and a verify-only pass must
// notice it, so the check is not vacuous.
func TestE2EFioVerifyMultiConn(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fio")
	testsupport.NeedTool(t, "sfdisk")
	// 4 KiB requests run inline in the server's reader; 1 MiB reads are
	// MDL reads, sent from the image's page cache.
	for _, bs := range []string{"4k", "1m"} {
		t.Run("bs="+bs, func(t *testing.T) {
			t.Parallel()
			e2eFioVerifyMultiConn(t, bs)
		})
	}
}

func e2eFioVerifyMultiConn(t *testing.T, bs string) {
	dir := t.TempDir()
	mbr := testworld.MBR(t, dir)
	parts := testsupport.Sfdisk(t, mbr)
	p := parts[len(parts)-1] // the second logical partition, mbr@5
	outside := testsupport.HashOutside(t, mbr, p)

	sys, _ := testworld.System(t, 4, false, mbr)
	// The disk trace records each request that reaches the disk, with its
	// requestor: the NBD connection it came from.
	if _, err := sys.AddFilter("trace:on=mbr"); err != nil {
		t.Fatal(err)
	}
	uri := testworld.ServeSystem(t, sys, false) + "/mbr@5"
	const jobs, region = 4, 4 * testsupport.MiB
	args := []string{"--name=e2e", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite", "--bs=" + bs, "--iodepth=8",
		"--numjobs=" + strconv.Itoa(jobs), "--size=" + strconv.Itoa(region), "--offset_increment=" + strconv.Itoa(region),
		"--verify=crc32c", "--do_verify=1", "--continue_on_error=verify", "--verify_state_save=0", "--runtime=30"}
	code, got, out := testworld.Fio(t, args...)
	if code != 0 || len(got) != jobs {
		t.Fatalf("fio: exit status %d, %d jobs\n%s", code, len(got), out)
	}
	for i, j := range got {
		if j.Error != 0 || j.TotalErr == nil || *j.TotalErr != 0 || j.Write.Bytes != region || j.Read.Bytes != region {
			t.Errorf("fio job %d: error %d, total_err %v, wrote %d, verified %d (want %d each)", i, j.Error, j.TotalErr, j.Write.Bytes, j.Read.Bytes, region)
		}
	}
	requestors := map[string]int{}
	recs, _ := sys.Ring().Since(0)
	for _, r := range recs {
		if r.Layer == "disk" && r.Operation == iomgr.MajorWrite.String() {
			requestors[r.Requestor]++
		}
	}
	if conns := len(requestors); conns < jobs {
		t.Errorf("the disk saw writes from %d clients, want %d (one connection per job): %v", conns, jobs, requestors)
	}
	if testsupport.HashOutside(t, mbr, p) != outside {
		t.Fatal("fio's writes reached the image outside partition 5")
	}

	// Break one byte of job 0's region behind the server's back.
	b := testsupport.ReadAt(t, mbr, p.Start+100, 1)
	testsupport.WriteAt(t, mbr, []byte{b[0] ^ 0xff}, p.Start+100)
	code, got, out = testworld.Fio(t, append(args, "--verify_only")...)
	failed := false
	for _, j := range got {
		failed = failed || j.Error != 0 || j.TotalErr != nil && *j.TotalErr > 0
	}
	if !failed {
		t.Fatalf("fio --verify_only missed a changed byte (exit status %d)\n%s", code, out)
	}
}
