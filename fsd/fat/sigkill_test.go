package fat

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// sigkillImageEnv names the image the copying child of
// TestSIGKILLMidCopyKeepsFlushedFiles works on.
const sigkillImageEnv = "VDISK_FAT_SIGKILL_IMAGE"

// sigkillFile is the name and content of the i-th file the child copies:
// long names, sizes from 5 KiB to about 1.3 MiB, so the cache fills and
// evicts (pages are written back before any flush) while files grow.
func sigkillFile(i int) (string, []byte) {
	name := fmt.Sprintf(`copied file number %03d.bin`, i)
	return name, fxContent(name, 5000+(i*337%13)*100003)
}

// TestSIGKILLMidCopyKeepsFlushedFiles runs a copy in a child process (this
// test binary again) that flushes each file after writing it, says so and
// keeps it open (so only the flush can have put it on the disk). After
// five flushed files the child goes on: it closes two more files without
// flushing them (their data is written at cleanup, their metadata waits
// for the lazy writer) and is half way through a sixth when it says it
// is ready and is killed with SIGKILL. Then fsck.fat -n may find the
// volume dirty, clusters lost and the free count wrong, but nothing else
// (no cross-links, no broken directory or chain), and every file the
// child reported flushed reads back intact through mtools and through
// the FSD.
func TestSIGKILLMidCopyKeepsFlushedFiles(t *testing.T) {
	fattest.Need(t, "mcopy", "fsck.fat")
	img := fattest.Mkfs(t, 64<<10, "-F", "32")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$")
	cmd.Env = append(os.Environ(), sigkillImageEnv+"="+img)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// The child waits on its standard input, which stays open until it
	// is killed.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	flushed := map[string][]byte{}
	ready := false
	sc := bufio.NewScanner(out)
	for !ready && sc.Scan() {
		var i int
		if _, err := fmt.Sscanf(sc.Text(), "FLUSHED %d", &i); err == nil {
			name, data := sigkillFile(i)
			flushed[`\copy\`+name] = data
		}
		ready = sc.Text() == "KILL ME"
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !ready || len(flushed) != 5 {
		t.Fatalf("the child stopped early: %d flushed files", len(flushed))
	}

	// fsck.fat: only what an interrupted FAT writer may leave.
	fsckOut, _ := fattest.Run(t, "fsck.fat", "-n", "-v", img)
	for _, l := range strings.Split(fsckOut, "\n") {
		if !fsckTolerated(img, l) {
			t.Errorf("fsck.fat -n after SIGKILL: %q\n%s", l, fsckOut)
			break
		}
	}

	// mtools reads every flushed file intact.
	tree := fxMtoolsTree(t, img)
	for p, want := range flushed {
		if got, ok := tree[p]; !ok || string(got) != string(want) {
			t.Errorf("mtools: flushed file %q: %d bytes, want %d", p, len(got), len(want))
		}
	}
	// So does the FSD, mounting the volume the killed child left dirty.
	x := fxOpen(t, img, 512, fxOpt{})
	for p, want := range flushed {
		if got := x.readFile(p); string(got) != string(want) {
			t.Errorf("FSD: flushed file %q: %d bytes, want %d", p, len(got), len(want))
		}
	}
	x.close()
}

// fsckTolerated reports whether a line of fsck.fat -n -v output is
// allowed after a crash: its banner and the volume description, the dirty
// bit (also as the one byte, offset 65 of a FAT32 boot sector, where it
// differs from the backup), lost clusters (chains no entry points at) and
// a wrong free count.
func fsckTolerated(img, l string) bool {
	l = strings.TrimSpace(l)
	switch l {
	case "There are differences between boot sector and its backup.", "65:01/00",
		"This is mostly harmless. Differences: (offset:original/backup)", "Not automatically fixing this.":
		return true
	}
	for _, ok := range []string{
		"", "fsck.fat ", "Checking we can access the last sector", "Boot sector contents:",
		"Checking for unused clusters", "Checking free cluster summary", "Checking file ",
		"Checking for bad clusters", "Reclaiming unconnected clusters", "Starting check/repair pass",
		"Starting verification pass", "Leaving filesystem unchanged", "Dirty bit is set",
		"Automatically removing dirty bit", "Free cluster summary wrong", "Free cluster summary uninitialized",
		"Reclaimed ", "unused clusters", img + ":", "0x41:", "Fs was not properly unmounted",
		"Recovering", "Reclaim", "System ID ", "First FAT starts", "Root directory start",
	} {
		if l == ok || ok != "" && strings.HasPrefix(l, ok) {
			return true
		}
	}
	// The boot sector description: "   512 bytes per logical sector" and
	// the like, all numbers then words, and the volume label/serial lines.
	if f := strings.Fields(l); len(f) > 1 && (strings.IndexFunc(f[0], func(r rune) bool { return r < '0' || r > '9' }) < 0 ||
		strings.HasPrefix(f[0], "0x") || f[0] == "Media" || f[0] == "Volume" || f[0] == "Data" || f[0] == "Root" ||
		strings.Contains(l, "bytes per") || strings.Contains(l, "sectors")) {
		return !strings.Contains(l, "cross") && !strings.Contains(l, "Cross")
	}
	return false
}

// TestSIGKILLChild is the copying child of
// TestSIGKILLMidCopyKeepsFlushedFiles; run alone it has nothing to do.
func TestSIGKILLChild(t *testing.T) {
	img := os.Getenv(sigkillImageEnv)
	if img == "" {
		t.Skip("the child of TestSIGKILLMidCopyKeepsFlushedFiles")
	}
	x := fxOpen(t, img, 512, fxOpt{})
	x.mkdir(`\copy`)
	copyFile := func(i int, upTo float64) *iomgr.FileObject {
		name, data := sigkillFile(i)
		fo := x.mustOpen(`\copy\`+name, fxRW, iomgr.FileCreate, 0)
		data = data[:int(float64(len(data))*upTo)]
		for off := 0; off < len(data); off += 32 << 10 {
			if st := fxWrite(fo, int64(off), data[off:min(off+32<<10, len(data))]); st != iomgr.StatusSuccess {
				t.Fatalf("%s: write: %v", name, st)
			}
		}
		return fo
	}
	for i := 0; i < 5; i++ {
		fo := copyFile(i, 1)
		if ios := fxCall(fo, iomgr.MajorFlushBuffers, 0, nil); ios.Status != iomgr.StatusSuccess {
			t.Fatalf("flush: %v", ios.Status)
		}
		fmt.Printf("FLUSHED %d\n", i)
		defer fxClose(fo) // never reached: the child is killed
	}
	fxClose(copyFile(5, 1))
	fxClose(copyFile(6, 1))
	copyFile(7, 0.5)
	fmt.Println("KILL ME")
	_, _ = bufio.NewReader(os.Stdin).ReadByte()
	t.Fatal("not killed")
}
