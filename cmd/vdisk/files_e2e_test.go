package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// TestCLIFileCommands drives the file commands of docs/CLI.md on a FAT16
// partition made by mkfs.fat, and checks the result with mtools and
// fsck.fat; every failure is one line naming the object and the reason.
func TestCLIFileCommands(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "mcopy")
	bin := testsupport.BuildCLI(t)
	dir := t.TempDir()
	img := testworld.FATImage(t, dir, "16", 64<<20)
	vol := img + "@1"
	run := func(stdin string, args ...string) testsupport.Result {
		t.Helper()
		return testsupport.Cmd{Dir: dir, Stdin: stdin}.Run(t, bin, args...)
	}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		r := run(stdin, args...)
		if r.Code != 0 {
			t.Fatalf("vdisk %q: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
		}
		return r.Stdout
	}
	fails := func(code int, words []string, args ...string) {
		t.Helper()
		r := run("", args...)
		if r.Code != code {
			t.Fatalf("vdisk %q: exit %d, want %d\n%s%s", args, r.Code, code, r.Stdout, r.Stderr)
		}
		testsupport.OneLine(t, strings.Join(args, " "), r.Stderr, words...)
	}

	host := filepath.Join(dir, "tree")
	for name, data := range map[string]string{
		"boot/EFI/BOOT/BOOTX64.EFI":  "MZ",
		"boot/grub/grub.cfg":         "set timeout=0\n",
		"boot/Long Name Ünïcode.txt": "u",
		"boot/empty":                 "",
	} {
		p := filepath.Join(host, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}
	ok("", "cp", "-r", filepath.Join(host, "boot"), vol+":/")
	ok("hello from stdin\n", "cp", "-", vol+":/boot/stdin.txt")
	if got := ok("", "cat", vol+":/boot/grub/grub.cfg"); got != "set timeout=0\n" {
		t.Fatalf("cat: %q", got)
	}
	var entries []struct {
		Path string `json:"path"`
		Dir  bool   `json:"dir"`
		Size int64  `json:"size"`
	}
	if err := json.Unmarshal([]byte(ok("", "ls", "-R", "--json", vol+":/")), &entries); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Path] = true
	}
	for _, want := range []string{"/boot/EFI/BOOT/BOOTX64.EFI", "/boot/Long Name Ünïcode.txt", "/boot/empty", "/boot/stdin.txt"} {
		if !seen[want] {
			t.Fatalf("ls -R --json lacks %s: %v", want, entries)
		}
	}
	ok("", "mkdir", "-p", vol+":/a/b/c")
	ok("", "mv", vol+":/boot/stdin.txt", vol+":/a/b/c")
	ok("", "rm", "-r", vol+":/boot/grub")
	ok("", "label", vol, "CLITEST")
	if got := strings.TrimSpace(ok("", "label", vol)); got != "CLITEST" {
		t.Fatalf("label: %q", got)
	}
	out := filepath.Join(dir, "out.txt")
	ok("", "cp", vol+":/a/b/c/stdin.txt", out)
	if b, _ := os.ReadFile(out); string(b) != "hello from stdin\n" {
		t.Fatalf("copied out: %q", b)
	}

	// Failures: one line, naming what failed and why.
	fails(1, []string{"no/such", "not"}, "cat", vol+":/no/such")
	fails(1, []string{"partition 7", "1"}, "ls", img+"@7:/")
	fails(1, []string{"directory", "-r"}, "rm", vol+":/a")
	fails(1, []string{"bad:name"}, "cp", out, vol+":/bad:name")
	fails(2, []string{"VOLUME"}, "cat")
	fails(1, []string{"nosuch.img", "no such image file"}, "ls", "nosuch.img:/x")

	// The image is clean and mtools agrees.
	parts := testsupport.Sfdisk(t, img)
	testsupport.FsckPartition(t, img, parts[0].Start, parts[0].Size)
	rc := filepath.Join(dir, "mtoolsrc")
	os.WriteFile(rc, []byte("drive v: file=\""+img+"\" offset="+strconv.FormatInt(parts[0].Start, 10)+"\nmtools_skip_check=1\n"), 0o644)
	cmd := exec.Command("mdir", "-/", "-b", "v:/")
	cmd.Env = append(os.Environ(), "MTOOLSRC="+rc, "LC_ALL=C.UTF-8")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("mdir: %v", err)
	}
	listing := string(b)
	for _, want := range []string{"V:/boot/EFI/BOOT/BOOTX64.EFI", "V:/a/b/c/stdin.txt", "V:/boot/Long Name Ünïcode.txt"} {
		if !strings.Contains(listing, want) {
			t.Fatalf("mdir lacks %s:\n%s", want, listing)
		}
	}
	if strings.Contains(listing, "grub") {
		t.Fatalf("removed directory still listed:\n%s", listing)
	}
}

// TestCLICreateFormatsFATPartitions: `vdisk create` formats FAT-typed
// partitions with their labels; fsck.fat is clean on each and mtools reads
// the label; `vdisk format` reformats one with the options given.
func TestCLICreateFormatsFATPartitions(t *testing.T) {
	t.Parallel()
	testsupport.NeedTool(t, "fsck.fat")
	testsupport.NeedTool(t, "minfo")
	bin := testsupport.BuildCLI(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "esp.img")
	r := testsupport.Cmd{Dir: dir}.Run(t, bin, "create", img, "--size", "200MiB", "--table", "gpt",
		"--part", "64MiB:esp:EFI", "--part", "32MiB:fat16:DATA", "--part", "rest:fat12:SMALL")
	if r.Code != 0 {
		t.Fatalf("create: %d %s", r.Code, r.Stderr)
	}
	parts := testsupport.Sfdisk(t, img)
	labels := []string{"EFI", "DATA", "SMALL"}
	types := []string{"FAT32", "FAT16", "FAT12"}
	for i, p := range parts {
		part := testsupport.ExtractPartition(t, img, p.Start, p.Size)
		if out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput(); err != nil {
			t.Fatalf("partition %d: fsck.fat -n: %v\n%s", i+1, err, out)
		}
		cmd := exec.Command("minfo", "-i", part, "::")
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), `disk label="`+labels[i]) {
			t.Fatalf("partition %d: minfo: %v\n%s", i+1, err, out)
		}
		info := testsupport.Cmd{Dir: dir}.Run(t, bin, "info", img, "--json")
		if !strings.Contains(info.Stdout, `"type": "`+types[i]+`"`) {
			t.Fatalf("info --json lacks %s:\n%s", types[i], info.Stdout)
		}
	}
	r = testsupport.Cmd{Dir: dir}.Run(t, bin, "format", img+"@2", "--fat", "16", "--label", "NEW", "--volume-id", "CAFEF00D", "--cluster-size", "2KiB")
	if r.Code != 0 {
		t.Fatalf("format: %d %s", r.Code, r.Stderr)
	}
	part := testsupport.ExtractPartition(t, img, parts[1].Start, parts[1].Size)
	cmd := exec.Command("minfo", "-i", part, "::")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, _ := cmd.Output()
	if !strings.Contains(string(out), "CAFEF00D") || !strings.Contains(string(out), `disk label="NEW`) || !strings.Contains(string(out), "cluster size: 4 sectors") {
		t.Fatalf("after format, minfo:\n%s", out)
	}
	r = testsupport.Cmd{Dir: dir}.Run(t, bin, "format", img+"@2", "--fat", "32")
	if r.Code != 1 {
		t.Fatalf("FAT32 on 32 MiB: exit %d, want 1\n%s", r.Code, r.Stderr)
	}
	testsupport.OneLine(t, "format --fat 32", r.Stderr, "too small", "FAT32")
}
