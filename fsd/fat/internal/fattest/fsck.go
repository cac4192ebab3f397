package fattest

import (
	"regexp"
	"strconv"
	"testing"
)

var (
	reFsckNum = func(pat string) *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*` + pat) }
)

// FsckFields reads the figures fsck.fat -v -n prints.
func FsckFields(t *testing.T, out string) map[string]int64 {
	t.Helper()
	pats := map[string]string{
		"media":      `Media byte 0x([0-9a-f]+)`,
		"bps":        `(\d+) bytes per logical sector`,
		"cluster":    `(\d+) bytes per cluster`,
		"reserved":   `(\d+) reserved sectors?`,
		"fatoff":     `First FAT starts at byte (\d+)`,
		"nfats":      `(\d+) FATs, \d+ bit entries`,
		"bits":       `\d+ FATs, (\d+) bit entries`,
		"fatbytes":   `(\d+) bytes per FAT`,
		"rootoff":    `Root directory starts at byte (\d+)`,
		"rootclus":   `Root directory start at cluster (\d+)`,
		"rootents":   `(\d+) root directory entries`,
		"dataoff":    `Data area starts at byte (\d+)`,
		"clusters":   `(\d+) data clusters`,
		"spt":        `(\d+) sectors/track`,
		"heads":      `\d+ sectors/track, (\d+) heads`,
		"hidden":     `(\d+) hidden sectors`,
		"total":      `(\d+) sectors total`,
		"usedclus":   `.*\d+ files, (\d+)/\d+ clusters`,
		"totalclus2": `.*\d+ files, \d+/(\d+) clusters`,
	}
	m := map[string]int64{}
	for k, p := range pats {
		if s := reFsckNum(p).FindStringSubmatch(out); s != nil {
			base := 10
			if k == "media" {
				base = 16
			}
			n, err := strconv.ParseInt(s[1], base, 64)
			if err != nil {
				t.Fatal(err)
			}
			m[k] = n
		}
	}
	return m
}
