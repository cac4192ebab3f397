package build

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVFATAutoSize: size = auto gives the smallest whole MiB whose volume
// holds the content; one MiB less is refused with the size that would do;
// fsck.fat and mtools find the result clean and whole.
func TestVFATAutoSize(t *testing.T) {
	needBoardTools(t)
	in := t.TempDir()
	root := filepath.Join(in, "root", "boot")
	for i := range 300 {
		p := filepath.Join(root, fmt.Sprintf("dir %d", i%7), fmt.Sprintf("a long file name number %03d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, 1000+i*97), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, flags := range []string{"", "-F 32", "-F 16 -s 1"} {
		t.Run(flags, func(t *testing.T) {
			cfg := fmt.Sprintf("image boot.vfat {\n vfat { extraargs = %q label = \"AUTO\" }\n mountpoint = \"/boot\"\n size = auto\n}\n", flags)
			out, err := buildConfig(t, cfg, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(out, "boot.vfat")
			fi, err := os.Stat(img)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size()%(1<<20) != 0 {
				t.Errorf("auto size %d is not a whole MiB", fi.Size())
			}
			if out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput(); err != nil {
				t.Errorf("fsck.fat -n: %v\n%s", err, out)
			}
			got, _ := mtoolsTree(t, img)
			if out, err := exec.Command("diff", "-r", root, got).CombinedOutput(); err != nil {
				t.Errorf("mtools reads back another tree:\n%s", out)
			}
			// One MiB less does not hold it, and says what would.
			smaller := strings.Replace(cfg, "size = auto", fmt.Sprintf("size = %dM", fi.Size()>>20-1), 1)
			_, err = buildConfig(t, smaller, in, nil)
			want := fmt.Sprintf("it needs %d MiB (size = %dM, or size = auto)", fi.Size()>>20, fi.Size()>>20)
			if err == nil || !strings.Contains(err.Error(), "is too small for its content") || !strings.Contains(err.Error(), want) {
				t.Errorf("%d MiB: %v; want an error saying %q", fi.Size()>>20-1, err, want)
			}
		})
	}
}
