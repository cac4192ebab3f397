package fat

// Volume labels against dosfstools' label-* test images: each image (made
// by mkdosfs, dosfslabel, mlabel or Windows XP) and the label fatlabel
// reads from it. Reading a label through the FSD must give that label;
// where an image was made by setting a label on another image of the set,
// setting the same label through the FSD must leave what fatlabel (the
// oracle) leaves when it sets it on that image.

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// fxVolumeLabel queries the label through the FSD.
func (x *fxVol) volumeLabel() string {
	x.t.Helper()
	fo := x.mustOpen(``, iomgr.GenericRead, iomgr.FileOpen, 0)
	defer fxClose(fo)
	var vi iomgr.FileFsVolumeInformation
	st := fxCall(fo, iomgr.MajorQueryVolumeInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
		sl.Parameters.QueryVolume.Class = iomgr.FileFsVolumeInformationClass
		irp.SystemBuffer = &vi
	}).Status
	if st != iomgr.StatusSuccess {
		x.t.Fatalf("query the volume label: %v", st)
	}
	return vi.VolumeLabel
}

// setVolumeLabel sets the label through the FSD ("" removes it), as
// `vdisk label` does.
func (x *fxVol) setVolumeLabel(label string) iomgr.Status {
	x.t.Helper()
	fo := x.mustOpen(``, iomgr.GenericRead|iomgr.GenericWrite, iomgr.FileOpen, 0)
	defer fxClose(fo)
	return fxCall(fo, iomgr.MajorSetVolumeInformation, 0, func(sl *iomgr.StackLocation, irp *iomgr.IRP) {
		sl.Parameters.SetVolume.Class = iomgr.FileFsLabelInformationClass
		irp.SystemBuffer = &iomgr.FileFsLabelInformation{VolumeLabel: label}
	}).Status
}

// lbStep is one step in the name of a label-* image: the tool that made or
// changed the volume and the label it gave ("none", "empty" and "erase"
// give none; "NO_NAME" is the text "NO NAME").
type lbStep struct{ tool, value string }

// lbSteps splits "label-fat32_mkdosfs_none_xp_label1" into its steps.
func lbSteps(t *testing.T, name string) []lbStep {
	t.Helper()
	f := strings.Split(strings.TrimPrefix(name, "label-fat32_"), "_")
	var steps []lbStep
	for i := 0; i < len(f); i++ {
		s := lbStep{tool: f[i]}
		if i+1 >= len(f) {
			t.Fatalf("%s: step %q has no label", name, f[i])
		}
		s.value = f[i+1]
		i++
		if s.value == "NO" && i+1 < len(f) && f[i+1] == "NAME" {
			s.value = "NO NAME"
			i++
		}
		steps = append(steps, s)
	}
	return steps
}

// lbName builds the image name of a list of steps.
func lbName(steps []lbStep) string {
	var b strings.Builder
	b.WriteString("label-fat32")
	for _, s := range steps {
		b.WriteString("_" + s.tool + "_" + strings.ReplaceAll(s.value, " ", "_"))
	}
	return b.String()
}

// lbFatlabel is what fatlabel prints for an image (nothing at all when the
// root directory has no label entry).
func lbFatlabel(t *testing.T, img string) string {
	t.Helper()
	return fattest.Must(t, "fatlabel", img)
}

// lbMlabel is mtools' view of the label.
func lbMlabel(t *testing.T, img string) string {
	t.Helper()
	out, _ := fattest.Run(t, "mlabel", "-s", "-i", img, "::")
	return out
}

// lbFsck is fsck.fat -n's verdict, with the image's name taken out, and
// without what it says of the FSInfo free count: the FSD brings FSInfo up
// to date whenever it writes to a volume (as FastFAT does), fatlabel never
// touches it.
func lbFsck(t *testing.T, img string) string {
	t.Helper()
	out, code := fattest.Run(t, "fsck.fat", "-n", img)
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "Free cluster summary") {
			keep = append(keep, strings.ReplaceAll(l, img, "IMG"))
		}
	}
	return strings.Join(keep, "\n") + "exit " + strconv.Itoa(code)
}

// lbBootLabels is the label field of the boot sector and of its backup.
func lbBootLabels(t *testing.T, img string) (boot, backup string) {
	t.Helper()
	b, bb := fxBootSectors(t, img)
	for _, s := range []struct {
		raw []byte
		out *string
	}{{b, &boot}, {bb, &backup}} {
		if s.raw == nil {
			continue
		}
		bs, err := ondisk.ParseBootSector(s.raw)
		if err != nil {
			t.Fatal(err)
		}
		*s.out = string(bs.VolumeLabel[:])
	}
	return boot, backup
}

// lbCopy copies an image to a new temporary directory, leaving its zero
// blocks out (sparse), as xxd -r made it.
func lbCopy(t *testing.T, src string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := in.ReadAt(buf, off)
		if n > 0 && !allZero(buf[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
		}
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Truncate(off); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestLabelsOfDosfstoolsImages(t *testing.T) {
	fattest.Need(t, "fatlabel", "mlabel", "fsck.fat", "mkfs.fat")
	dir := testsupport.DosfstoolsDir(t)
	for _, file := range testsupport.DosfstoolsCases(t, "label-*.label") {
		name := strings.TrimSuffix(file, ".label")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			img := testsupport.DosfstoolsImage(t, name+".xxd")
			// The oracle agrees with its own expectation, or the
			// comparison below means nothing.
			if got := lbFatlabel(t, img); got != string(want) {
				t.Fatalf("fatlabel reads %q, dosfstools expects %q", got, want)
			}
			before := fxSum(t, img)
			x := fxOpen(t, img, 512, fxOpt{})
			if got, w := x.volumeLabel(), strings.TrimSuffix(string(want), "\n"); got != w {
				t.Errorf("the FSD reads label %q, fatlabel %q", got, w)
			}
			if got, w := x.vol.VPB().Label(), strings.TrimSuffix(string(want), "\n"); got != w {
				t.Errorf("the VPB holds label %q, fatlabel reads %q", got, w)
			}
			x.close()
			if fxSum(t, img) != before {
				t.Error("reading the label changed the image")
			}

			steps := lbSteps(t, name)
			if lbName(steps) != name {
				t.Fatalf("steps %v give name %s", steps, lbName(steps))
			}
			last := steps[len(steps)-1]
			if len(steps) == 1 {
				if last.tool == "mkdosfs" {
					lbCompareFormat(t, img, last.value)
				}
				return
			}
			// Made by setting a label on another image of the set: set
			// it on that image with the FSD and with fatlabel.
			base := testsupport.DosfstoolsImage(t, lbName(steps[:len(steps)-1])+".xxd")
			mine, theirs := lbCopy(t, base), lbCopy(t, base)
			label := last.value
			if label == "empty" || label == "erase" {
				label = ""
				fattest.Must(t, "fatlabel", "-r", theirs)
			} else {
				fattest.Must(t, "fatlabel", theirs, label)
			}
			y := fxOpen(t, mine, 512, fxOpt{})
			if st := y.setVolumeLabel(label); st != iomgr.StatusSuccess {
				t.Fatalf("set label %q: %v", label, st)
			}
			if got, w := y.volumeLabel(), strings.TrimSuffix(lbFatlabel(t, theirs), "\n"); got != w {
				t.Errorf("after setting %q the FSD reads %q; fatlabel set it to %q", label, got, w)
			}
			y.close()
			for _, c := range []struct {
				what string
				read func(t *testing.T, img string) string
			}{
				{"fatlabel", lbFatlabel},
				{"mlabel -s", lbMlabel},
				{"fsck.fat -n", lbFsck},
				{"boot sector label", func(t *testing.T, img string) string { b, _ := lbBootLabels(t, img); return b }},
				{"backup boot sector label", func(t *testing.T, img string) string { _, b := lbBootLabels(t, img); return b }},
			} {
				if got, w := c.read(t, mine), c.read(t, theirs); got != w {
					t.Errorf("set %q: %s gives %q after the FSD, %q after fatlabel", label, c.what, got, w)
				}
			}
			// Fresh mounts read it back as fatlabel does.
			z := fxOpen(t, mine, 512, fxOpt{})
			if got, w := z.volumeLabel(), strings.TrimSuffix(lbFatlabel(t, mine), "\n"); got != w {
				t.Errorf("remounted, the FSD reads %q; fatlabel %q", got, w)
			}
			z.close()
			if got := lbFatlabel(t, mine); got != string(want) {
				t.Logf("fatlabel 4.2 and the FSD leave %q where %s left %q", got, last.tool, want)
			}
		})
	}
}

// lbCompareFormat formats a volume of the image's size with a label (none
// for "none") with Format and with mkfs.fat, and compares what fatlabel and
// mlabel read from both: format keeps a label's case as mkfs.fat does.
func lbCompareFormat(t *testing.T, img, value string) {
	t.Helper()
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	label := value
	if value == "none" {
		label = ""
	}
	dir := t.TempDir()
	mine, theirs := filepath.Join(dir, "mine.img"), filepath.Join(dir, "theirs.img")
	f, err := os.Create(mine)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(fi.Size()); err != nil {
		t.Fatal(err)
	}
	_, err = Format(f, fi.Size(), FormatOptions{FATType: 32, Label: label, VolumeID: 0x1234ABCD, HasVolumeID: true})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-C", "-F", "32", "-i", "1234ABCD"}
	if label != "" {
		args = append(args, "-n", label)
	}
	fattest.Must(t, "mkfs.fat", append(args, theirs, strconv.FormatInt(fi.Size()/1024, 10))...)
	for _, read := range []func(t *testing.T, img string) string{lbFatlabel, lbMlabel} {
		if got, w := read(t, mine), read(t, theirs); got != w {
			t.Errorf("format --label %q: %q, mkfs.fat -n: %q", label, got, w)
		}
	}
	x := fxOpen(t, mine, 512, fxOpt{})
	if got := x.volumeLabel(); got != label {
		t.Errorf("format --label %q: the FSD reads %q", label, got)
	}
	x.close()
}

// fxSum is an image's SHA-256, to show that something left it untouched.
func fxSum(t testing.TB, img string) [32]byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
