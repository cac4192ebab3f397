package build

// genimage's own test suite (sharness: hdimage.test, genimage.test,
// filesystem.test, misc.test), run unchanged against `vdisk build` through
// a `genimage` wrapper: the suite compares what it builds with its
// expected sfdisk/fdisk dumps, hexdumps and file lists. Every case of the
// four files is listed below, as one that must pass or as not applicable
// with the reason; a case that passes against the table's word fails the
// test too, so the table cannot go stale.

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// suiteCases: "" means the case must pass; otherwise why it does not
// apply (it must then fail or be skipped).
var suiteCases = map[string]map[string]string{
	"hdimage.test": {
		"hdimage": "", "hdimage2": "", "hdimage4": "", "hdimage5": "", "hdimage6": "", "hdimage7": "",
		"hdimage-hybrid": "", "hdimage syntax": "", "gpt-overlap1": "", "gpt-overlap2": "", "gpt-overlap3": "",
		"gpt-partition-types": "", "gpt-invalid-partition-types": "",
		"bootloader-hole1": "", "bootloader-hole2": "", "bootloader-hole3": "", "bootloader-hole4": "", "bootloader-hole5": "",
		"hdimage no-partition": "", "hdimage forced-primary": "", "hdimage imageoffset": "",
		"hdimage sparse": "its configuration builds an ext4 image with mke2fs, an image type vdisk does not build (TestSparseExt4Partition does the same with the ext4 image built beforehand)",
	},
	"genimage.test": {
		"exec": "", "exec-fail": "",
		"includepath1": "", "includepath2": "", "includepath3": "", "includepath4": "",
		"includepath5": "runs only for a genimage whose --help does not offer --includepath (skipped: vdisk build offers it)",
	},
	"filesystem.test": {
		"vfat":     "",
		"cpio":     "a cpio image: vdisk builds hdimage, vfat and file images only",
		"cramfs":   "a cramfs image: vdisk builds hdimage, vfat and file images only",
		"iso":      "an iso image: vdisk builds hdimage, vfat and file images only",
		"f2fs":     "an f2fs image: vdisk builds hdimage, vfat and file images only",
		"btrfs":    "a btrfs image: vdisk builds hdimage, vfat and file images only",
		"squashfs": "a squashfs image: vdisk builds hdimage, vfat and file images only",
		"tar":      "a tar image: vdisk builds hdimage, vfat and file images only",
		"erofs":    "an erofs image: vdisk builds hdimage, vfat and file images only",
	},
	"misc.test": {
		"disable random-seed": "", "enable random-seed": "", "use different random-seeds": "",
		"qemu":           "a qemu (qcow2) image: vdisk builds hdimage, vfat and file images only",
		"fit":            "a FIT image: vdisk builds hdimage, vfat and file images only",
		"rauc":           "a RAUC bundle: vdisk builds hdimage, vfat and file images only",
		"android-sparse": "android-sparse images (sparse.config, sparse-fill.config): vdisk builds hdimage, vfat and file images only",
		"fip":            "a FIP image: vdisk builds hdimage, vfat and file images only",
		"fip-size":       "a FIP image: vdisk builds hdimage, vfat and file images only",
		"mdraid":         "an mdraid image: vdisk builds hdimage, vfat and file images only",
		"custom":         "a custom image (a command builds it): vdisk builds hdimage, vfat and file images only",
		"verity":         "verity images: vdisk builds hdimage, vfat and file images only",
	},
}

// suiteTools are what the applicable cases need; scripts/test.sh installs
// them (fdisk, bsdextrautils, dosfstools, mtools).
var suiteTools = []string{"bash", "fdisk", "sfdisk", "hexdump", "dd", "fsck.fat", "mdir", "mkdosfs", "mcopy"}

var tapLine = regexp.MustCompile(`^(ok|not ok) \d+ (- (.*)|# skip ([^(]*?) \(.*)$`)

func TestGenimageSuite(t *testing.T) {
	src := testsupport.GenimageDir(t)
	for _, tool := range suiteTools {
		testsupport.NeedTool(t, tool)
	}
	dir := t.TempDir()
	suite := filepath.Join(dir, "test")
	if out, err := exec.Command("cp", "-r", src, suite).CombinedOutput(); err != nil {
		t.Fatalf("copying the suite: %v\n%s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", suite).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	vdisk := testsupport.BuildCLI(t)
	wrapper := "#!/bin/sh\nexec '" + vdisk + "' build \"$@\"\n"
	if err := os.WriteFile(filepath.Join(suite, "genimage"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	for file, cases := range suiteCases {
		t.Run(file, func(t *testing.T) {
			cmd := exec.Command("bash", "./"+file)
			cmd.Dir = suite
			// No SOURCE_DATE_EPOCH from the caller: the suite's random-seed
			// cases need runs without a seed to differ.
			cmd.Env = filteredEnv("SOURCE_DATE_EPOCH", "GENIMAGE_CONFIG", "GENIMAGE_RANDOMSEED")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			_ = cmd.Run() // the suite exits 1 when any case fails, applicable or not
			seen := map[string]bool{}
			sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
			for sc.Scan() {
				m := tapLine.FindStringSubmatch(sc.Text())
				if m == nil {
					continue
				}
				name, skipped := m[3], false
				if m[4] != "" {
					name, skipped = strings.TrimSpace(m[4]), true
				}
				seen[name] = true
				reason, known := cases[name]
				switch {
				case !known:
					t.Errorf("case %q is not in the table of suite cases: add it with its expectation", name)
				case reason == "" && (m[1] != "ok" || skipped):
					t.Errorf("case %q: %s, want ok", name, sc.Text())
				case reason != "" && m[1] == "ok" && !skipped:
					t.Errorf("case %q passes, but the table says it does not apply (%s): update the table", name, reason)
				default:
					t.Logf("%-30s %s", name, map[bool]string{true: "passed", false: "not applicable: " + reason}[reason == ""])
				}
			}
			for name := range cases {
				if !seen[name] {
					t.Errorf("case %q did not run", name)
				}
			}
			if t.Failed() {
				t.Logf("the suite's output:\n%s", out.String())
			}
		})
	}
}

func filteredEnv(drop ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			if k == d {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}
