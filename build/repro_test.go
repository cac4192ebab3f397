package build

// Reproducibility: two builds of one configuration from two copies of the
// input tree that differ in everything but content (files created in
// another order, so readdir returns them in another order; mtimes, all
// after SOURCE_DATE_EPOCH, that differ; another TZ and umask; another
// directory) must give identical images. When they do not, diffoscope (if
// installed) says where.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// reproTree copies the files of in into dir in the given order, with
// mtimes offset from base by shift.
func reproTree(t *testing.T, in, dir string, reverse bool, base time.Time, shift time.Duration) {
	t.Helper()
	var names []string
	err := filepath.Walk(in, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(in, p)
			names = append(names, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if reverse {
		slices.Reverse(names)
	}
	for i, rel := range names {
		src, dst := filepath.Join(in, rel), filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o666); err != nil {
			t.Fatal(err)
		}
		mt := base.Add(shift + time.Duration(i)*time.Minute)
		if err := os.Chtimes(dst, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// readdirOrder is a directory's names in the order readdir returns them.
func readdirOrder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// explainDiff runs diffoscope on two images that should be equal.
func explainDiff(t *testing.T, a, b string) {
	t.Helper()
	if _, err := exec.LookPath("diffoscope"); err != nil {
		t.Logf("(diffoscope not installed: it would say where %s and %s differ; apt-get install diffoscope)", a, b)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "diffoscope", "--max-report-size", "20000", a, b).CombinedOutput()
	t.Logf("diffoscope %s %s:\n%s", filepath.Base(a), filepath.Base(b), out)
}

func TestBuildReproducible(t *testing.T) {
	needBoardTools(t)
	vdisk := testsupport.BuildCLI(t)
	epoch := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cfgs, _ := filepath.Glob("testdata/boards/*.cfg")
	type run struct {
		reverse bool
		shift   time.Duration
		tz      string
		umask   string
	}
	runs := []run{{false, time.Hour, "UTC", "022"}, {true, 30 * 24 * time.Hour, "Pacific/Kiritimati", "077"}}
	outs := make([]string, len(runs))
	payloads := t.TempDir()
	boardInputs(t, payloads) // once: the copies differ in all but content
	var ins []string
	for i, r := range runs {
		// The second copy goes to another file system when there is one
		// (tmpfs lists a directory newest first, ext4 in hash order), so
		// that readdir gives another order.
		parent := t.TempDir()
		if i == 1 {
			if shm, err := os.MkdirTemp("/dev/shm", "vdisk-repro-"); err == nil {
				parent = shm
				t.Cleanup(func() { os.RemoveAll(shm) })
			}
		}
		in := filepath.Join(parent, fmt.Sprintf("copy %d", i))
		reproTree(t, payloads, in, r.reverse, epoch, r.shift)
		ins = append(ins, in)
		outs[i] = filepath.Join(t.TempDir(), "images")
		for _, cfg := range cfgs {
			abs, _ := filepath.Abs(cfg)
			cmd := exec.Command("sh", "-c", "umask "+r.umask+" && exec \"$0\" build --config \"$1\" --inputpath . --rootpath root --outputpath \"$2\" --tmppath \"$3\" --loglevel 0",
				vdisk, abs, filepath.Join(outs[i], filepath.Base(cfg)), filepath.Join(t.TempDir(), "tmp"))
			cmd.Dir = in
			cmd.Env = append(filteredEnv("TZ", "SOURCE_DATE_EPOCH"), "TZ="+r.tz, fmt.Sprintf("SOURCE_DATE_EPOCH=%d", epoch.Unix()))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("vdisk build %s: %v\n%s", filepath.Base(cfg), err, out)
			}
		}
	}
	overlays := "rpi-firmware/overlays"
	if a, b := readdirOrder(t, filepath.Join(ins[0], overlays)), readdirOrder(t, filepath.Join(ins[1], overlays)); slices.Equal(a, b) {
		t.Errorf("readdir lists %s alike in both copies: the test needs them to differ", overlays)
	}
	images, _ := filepath.Glob(filepath.Join(outs[0], "*", "*"))
	if len(images) < 10 {
		t.Fatalf("only %d images built", len(images))
	}
	explained := false
	for _, a := range images {
		rel, _ := filepath.Rel(outs[0], a)
		b := filepath.Join(outs[1], rel)
		if testsupport.HashFile(t, a) != testsupport.HashFile(t, b) {
			t.Errorf("%s differs between the two builds", rel)
			if !explained && strings.HasSuffix(a, ".vfat") {
				explainDiff(t, a, b)
				explained = true
			}
		}
	}
}

// TestCommandsReproducible is the same for the file commands: create (GPT and
// MBR, formatted), cp -r, mkdir, label, and create --no-format then format,
// the case of 373 differing bytes. Two runs from differently made
// copies of a tree, under other TZ and umask, give the same images; a third
// without SOURCE_DATE_EPOCH does not (so the comparison can fail).
func TestCommandsReproducible(t *testing.T) {
	needBoardTools(t)
	vdisk := testsupport.BuildCLI(t)
	epoch := time.Date(2023, 6, 7, 8, 9, 10, 0, time.UTC)
	payloads := t.TempDir()
	boardInputs(t, payloads)
	script := `set -e
umask "$UMASK"
"$VDISK" create gpt.img --size 96MiB --table gpt --part 40MiB:esp:EFI --part rest:fat32:DATA
"$VDISK" cp -r tree/rpi-firmware/. gpt.img@1:/
"$VDISK" mkdir gpt.img@2:/dir gpt.img@2:/dir/sub
"$VDISK" cp -r tree/root tree/esp gpt.img@2:/dir/sub
"$VDISK" cp tree/Image gpt.img@2:/kernel.img
"$VDISK" label gpt.img@2 NEWLABEL
"$VDISK" create mbr.img --size 64MiB --table mbr --part 16MiB:fat16:BOOT --part rest:linux
"$VDISK" cp -r tree/extlinux tree/uEnv.txt mbr.img@1:/
"$VDISK" create raw.img --size 48MiB --table gpt --part rest:fat32:X --no-format
"$VDISK" format raw.img@1 -F 32 -n RAW -s 1
"$VDISK" cp -r tree/efi-part/. raw.img@1:/
`
	run := func(i int, env ...string) string {
		parent := t.TempDir()
		if i == 1 {
			if shm, err := os.MkdirTemp("/dev/shm", "vdisk-repro-"); err == nil {
				parent = shm
				t.Cleanup(func() { os.RemoveAll(shm) })
			}
		}
		dir := filepath.Join(parent, fmt.Sprintf("run %d", i))
		reproTree(t, payloads, filepath.Join(dir, "tree"), i == 1, epoch, time.Duration(i+1)*time.Hour)
		testsupport.Cmd{Dir: dir, Env: append(env, "VDISK="+vdisk)}.Must(t, "sh", "-c", script)
		return dir
	}
	a := run(0, "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10), "TZ=UTC", "UMASK=022")
	b := run(1, "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10), "TZ=Asia/Kathmandu", "UMASK=077")
	c := run(2, "TZ=UTC", "UMASK=022") // not reproducible: must differ
	for _, img := range []string{"gpt.img", "mbr.img", "raw.img"} {
		ha, hb := testsupport.HashFile(t, filepath.Join(a, img)), testsupport.HashFile(t, filepath.Join(b, img))
		if ha != hb {
			t.Errorf("%s differs between the two reproducible runs", img)
			explainDiff(t, filepath.Join(a, img), filepath.Join(b, img))
		}
		if testsupport.HashFile(t, filepath.Join(c, img)) == ha {
			t.Errorf("%s is the same without SOURCE_DATE_EPOCH: the comparison proves nothing", img)
		}
	}
}
