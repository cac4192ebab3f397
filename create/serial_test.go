package create_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/partition"
)

// Partitions that one CreateImage formats get distinct serial numbers, as
// mtools reads them.
func TestCreateGivesEachVolumeItsOwnSerial(t *testing.T) {
	t.Parallel()
	minfo := testsupport.NeedTool(t, "minfo")
	path := filepath.Join(t.TempDir(), "d.img")
	if _, err := create.Image(path, create.Options{Size: 128 * testsupport.MiB, Table: partition.GPT, Parts: []partition.Spec{
		{Size: 40 * testsupport.MiB, Type: "esp"}, {Size: 16 * testsupport.MiB, Type: "fat16"}, {Size: 16 * testsupport.MiB, Type: "fat12"}, {Size: partition.Rest, Type: "fat32"}}}); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`serial number: ([0-9A-F]{8})`)
	seen := map[string]int{}
	for i, p := range testsupport.Sfdisk(t, path) {
		out, err := exec.Command(minfo, "-i", path+"@@"+strconv.FormatInt(p.Start, 10), "::").CombinedOutput()
		if err != nil {
			t.Fatalf("minfo partition %d: %v\n%s", i+1, err, out)
		}
		m := re.FindSubmatch(out)
		if m == nil {
			t.Fatalf("minfo partition %d: no serial number in\n%s", i+1, out)
		}
		if j, dup := seen[string(m[1])]; dup {
			t.Fatalf("partitions %d and %d share serial %s", j, i+1, m[1])
		}
		seen[string(m[1])] = i + 1
	}
	if len(seen) != 4 {
		t.Fatalf("%d serials for 4 partitions", len(seen))
	}
}
