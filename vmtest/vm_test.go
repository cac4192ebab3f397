package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// vmDeadline bounds one boot of the VM, from QEMU's start to its exit. The
// guest's own steps take under a minute with KVM and about three with TCG
// on two cores; past this QEMU is killed and the test fails.
const vmDeadline = 7 * time.Minute

// hostCmdTimeout bounds each host command (vdisk, fsck.fat, go build).
const hostCmdTimeout = 5 * time.Minute

// scenarios are the guest's checks, in the order init.sh runs them.
var scenarios = []string{"setup", "nbdclient", "vdiskattach", "readonly_export", "espexample", "cow", "genimage"}

// bigMB is the size of the file the guest writes through nbd-client.
const bigMB = 32

func TestVM(t *testing.T) {
	if os.Getenv("VDISK_VM") == "0" {
		t.Skip("VDISK_VM=0: VM tests skipped on request")
	}
	h, err := findHost()
	if err != nil {
		t.Fatal(err)
	}
	accel := chooseAccel(t)
	work := t.TempDir()
	// The static linux/amd64 vdisk that both the host and the guest run.
	vdisk := testsupport.BuildCLI(t, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")

	// The images. disk.img: GPT, FAT32 ESP and FAT16 data, both filled by
	// vdisk cp -r with the same tree and its manifest.
	tree := filepath.Join(work, "tree")
	files := makeTree(t, tree)
	img := filepath.Join(work, "disk.img")
	makeImage(t, vdisk, img, tree)
	parts := partitions(t, vdisk, img)
	// ro.img: the same, served read-only.
	ro := filepath.Join(work, "ro.img")
	makeImage(t, vdisk, ro, tree)
	// base.img: one FAT32 partition under a copy-on-write overlay.
	base := filepath.Join(work, "base.img")
	overlay := filepath.Join(work, "base.overlay")
	hostCmd.Must(t, vdisk, "create", base, "--size", "64MiB", "--table", "gpt", "--part", "rest:fat32:BASE")
	hostCmd.Must(t, vdisk, "cp", "-r", tree+"/.", base+"@1:/")
	// esp.img: what examples/esp-image.sh makes of a boot tree.
	bootDir := filepath.Join(work, "boot")
	bootFiles := makeBootTree(t, bootDir)
	esp := filepath.Join(work, "esp.img")
	testsupport.Cmd{Env: []string{"VDISK=" + vdisk}, Timeout: hostCmdTimeout}.Must(t, "sh", "../examples/esp-image.sh", esp, bootDir)

	// sdcard.img: a Raspberry Pi SD card built by vdisk build from a
	// genimage configuration (MBR, a bootable FAT partition of firmware,
	// overlays and kernel, and a root partition image).
	sdcard, sdFiles, sdPart := makeSDCard(t, vdisk, filepath.Join(work, "sdcard"))

	before := map[string]string{}
	for _, p := range []string{ro, base, esp, sdcard} {
		before[p] = fileHash(t, p)
	}

	// The servers, on loopback ports of their own.
	rwPort := startServer(t, vdisk, img)
	roPort := startServer(t, vdisk, "--read-only", ro, esp, sdcard)
	cowPort := startServer(t, vdisk, "--filter", "cow:overlay="+overlay, base)

	initScript, err := os.ReadFile("testdata/init.sh")
	if err != nil {
		t.Fatal(err)
	}
	modNames, err := resolveModuleNames(h)
	if err != nil {
		t.Fatal(err)
	}
	env := fmt.Sprintf("HOST=10.0.2.2\nRW_PORT=%d\nRO_PORT=%d\nCOW_PORT=%d\nESP_SIZE=%d\nDATA_SIZE=%d\nBIG_MB=%d\nMODULES=%q\nSD_START=%d\nSD_SIZE=%d\n",
		rwPort, roPort, cowPort, parts[0].Size, parts[1].Size, bigMB, strings.Join(modNames, " "), sdPart.Start/512, sdPart.Size/512)
	initrd := filepath.Join(work, "initramfs.cpio")
	if _, err := buildInitramfs(initrd, h, vdisk, initScript, map[string][]byte{
		"vmtest.env":    []byte(env),
		"esp.sha256":    manifestOf(bootFiles),
		"sdcard.sha256": manifestOf(sdFiles),
	}); err != nil {
		t.Fatalf("building the initramfs: %v", err)
	}

	res, stalled := boot(t, h, accel, initrd, filepath.Join(work, "console.log"))
	if stalled {
		if os.Getenv("VDISK_VM_ACCEL") == "kvm" {
			t.Fatalf("VDISK_VM_ACCEL=kvm: the KVM guest printed nothing in %v", kvmStall)
		}
		t.Logf("the KVM guest printed nothing in %v: /dev/kvm answers but cannot run it (nested virtualisation?); booting with TCG", kvmStall)
		accel = "tcg"
		res, _ = boot(t, h, accel, initrd, filepath.Join(work, "console.log"))
	}
	failed := false
	for _, s := range scenarios {
		r := res.checks[s]
		switch {
		case r == nil || r.begin.IsZero():
			t.Errorf("guest check %s did not run", s)
			failed = true
		case r.fail != "":
			t.Errorf("guest check %s failed: %s", s, r.fail)
			failed = true
		case r.end.IsZero():
			t.Errorf("guest check %s did not finish", s)
			failed = true
		default:
			t.Logf("guest check %-16s ok in %5.1fs (%s)", s, r.end.Sub(r.begin).Seconds(), accel)
		}
	}
	t.Logf("VM (%s): boot to first check %.1fs, whole run %.1fs", accel, res.firstBegin.Seconds(), res.total.Seconds())
	if failed || !res.done {
		if !res.done {
			t.Errorf("the guest did not finish (%v)", res.err)
		}
		t.Logf("console (last 80 lines):\n%s", res.tail(80))
	}

	// The host side: stop the servers (they flush), then read back.
	stopServers(t)
	if res.checks["nbdclient"].ok() && res.checks["vdiskattach"].ok() {
		checkDisk(t, vdisk, h, img, parts, files, res.hashes)
	}
	if res.checks["readonly_export"].ok() {
		if got := fileHash(t, ro); got != before[ro] {
			t.Errorf("ro.img changed through a read-only export")
		}
	}
	if res.checks["espexample"].ok() {
		if got := fileHash(t, esp); got != before[esp] {
			t.Errorf("esp.img changed through a read-only export")
		}
	}
	if res.checks["cow"].ok() {
		checkCOW(t, vdisk, base, overlay, before[base])
	}
	if res.checks["genimage"].ok() {
		if got := fileHash(t, sdcard); got != before[sdcard] {
			t.Errorf("sdcard.img changed through a read-only export")
		}
	}
}

// sdcardConfig is after Buildroot's board/raspberrypi/genimage-raspberrypi4-64.cfg.
const sdcardConfig = `image boot.vfat {
	vfat {
		label = "RPIBOOT"
		files = { "bcm2711-rpi-4-b.dtb", "rpi-firmware/config.txt", "rpi-firmware/cmdline.txt",
			"rpi-firmware/start4.elf", "rpi-firmware/fixup4.dat", "rpi-firmware/overlays", "Image" }
	}
	size = 32M
}

image sdcard.img {
	hdimage {}
	partition boot {
		partition-type = 0xC
		bootable = "true"
		image = "boot.vfat"
	}
	partition rootfs {
		partition-type = 0x83
		image = "rootfs.img"
	}
}
`

// makeSDCard writes a Raspberry Pi's boot files and a genimage
// configuration into dir and builds the SD card image with vdisk build
// (reproducibly); it returns the image, the files of its FAT partition
// (their paths in the volume) and what vdisk info says of that partition.
func makeSDCard(t *testing.T, vdisk, dir string) (string, []treeFile, partition) {
	rng := rand.New(rand.NewPCG(4, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	in := filepath.Join(dir, "input")
	// Input path → path in the volume (the files list puts each in the root).
	inputs := []struct {
		src, vol string
		data     []byte
	}{
		{"bcm2711-rpi-4-b.dtb", "bcm2711-rpi-4-b.dtb", random(52 << 10)},
		{"rpi-firmware/config.txt", "config.txt", []byte("arm_64bit=1\nkernel=Image\ndtoverlay=miniuart-bt\n")},
		{"rpi-firmware/cmdline.txt", "cmdline.txt", []byte("root=/dev/mmcblk0p2 rootwait console=ttyAMA0,115200\n")},
		{"rpi-firmware/start4.elf", "start4.elf", random(2 << 20)},
		{"rpi-firmware/fixup4.dat", "fixup4.dat", random(5 << 10)},
		{"Image", "Image", random(4<<20 + 77)},
		{"rootfs.img", "", random(3 << 20)},
	}
	for _, name := range []string{"miniuart-bt", "disable-bt", "vc4-kms-v3d-pi4", "hifiberry-dacplus", "i2c-rtc-gpio", "rpi-poe-plus"} {
		inputs = append(inputs, struct {
			src, vol string
			data     []byte
		}{"rpi-firmware/overlays/" + name + ".dtbo", "overlays/" + name + ".dtbo", random(3 << 10)})
	}
	var files []treeFile
	for _, f := range inputs {
		p := filepath.Join(in, filepath.FromSlash(f.src))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if f.vol != "" {
			files = append(files, treeFile{f.vol, f.data})
		}
	}
	cfg := filepath.Join(dir, "genimage.cfg")
	if err := os.WriteFile(cfg, []byte(sdcardConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "images")
	testsupport.Cmd{Env: []string{"SOURCE_DATE_EPOCH=1700000000"}, Timeout: hostCmdTimeout}.Must(t, vdisk, "build", cfg,
		"--inputpath", in, "--outputpath", out, "--rootpath", filepath.Join(dir, "root"), "--tmppath", filepath.Join(dir, "tmp"), "--loglevel", "0")
	img := filepath.Join(out, "sdcard.img")
	var info struct{ Partitions []partition }
	if err := json.Unmarshal([]byte(hostCmd.Must(t, vdisk, "info", "--json", img)), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != 2 || info.Partitions[0].FileSystem.Type != "FAT16" {
		t.Fatalf("%s: partitions %+v, want a FAT16 one and another", img, info.Partitions)
	}
	return img, files, info.Partitions[0]
}

// chooseAccel picks KVM when /dev/kvm answers, TCG otherwise;
// VDISK_VM_ACCEL forces one.
func chooseAccel(t *testing.T) string {
	switch a := os.Getenv("VDISK_VM_ACCEL"); a {
	case "kvm", "tcg":
		return a
	case "":
	default:
		t.Fatalf("VDISK_VM_ACCEL=%q: want kvm or tcg", a)
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		t.Logf("no KVM (%v): the VM runs with TCG", err)
		return "tcg"
	}
	defer f.Close()
	const kvmGetAPIVersion = 0xAE00
	v, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), kvmGetAPIVersion, 0)
	if e != 0 || v != 12 {
		t.Logf("/dev/kvm does not answer (API %d, %v): the VM runs with TCG", v, e)
		return "tcg"
	}
	return "kvm"
}

// hostCmd runs the host's commands (vdisk, sh), each bounded.
var hostCmd = testsupport.Cmd{Timeout: hostCmdTimeout}

// treeFile is one file of the tree copied into the images.
type treeFile struct {
	path string // slash-separated, relative to the volume root
	data []byte
}

// Names in the tree that the guest changes (init.sh): renamed or deleted.
const (
	renameFile = "to rename.txt"
	renameDir  = "dir to rename"
	deleteFile = "to delete.txt"
	deleteDir  = "dir to delete"
)

// makeTree writes the host tree: long, Unicode (a surrogate pair
// included) and deeply nested names, an empty file, a multi-megabyte file,
// a directory of many long names, the files the guest will rename and
// delete, and MANIFEST.sha256 of all of them.
func makeTree(t *testing.T, root string) []treeFile {
	rng := rand.New(rand.NewPCG(8, 8))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	files := []treeFile{
		{"README.TXT", []byte("vdisk VM test tree\n")},
		{"A long file name with spaces, more than eight characters.text", []byte("long name\n")},
		{"Ünïcødé – ça marche.txt", []byte("latin\n")},
		{"日本語のファイル名.txt", []byte("cjk\n")},
		{"emoji 🙂 smile.txt", []byte("astral plane\n")},
		{"empty file", nil},
		{"big/multi-megabyte file.bin", random(6<<20 + 12345)},
		{"deep/level one/level two/level three/level four/nested file.txt", []byte("deep\n")},
		{renameFile, []byte("to be renamed by the guest\n")},
		{renameDir + "/inner file.txt", []byte("inside a renamed directory\n")},
		{deleteFile, []byte("to be deleted by the guest\n")},
		{deleteDir + "/x.txt", []byte("x\n")},
		{deleteDir + "/sub dir/y.txt", []byte("y\n")},
	}
	for i := range 150 {
		files = append(files, treeFile{fmt.Sprintf("many/a file with a long name number %03d.txt", i), random(100 + i*37)})
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "MANIFEST.sha256"), manifestOf(files), 0o644); err != nil {
		t.Fatal(err)
	}
	return files
}

// makeBootTree writes the boot tree examples/esp-image.sh puts in an ESP.
func makeBootTree(t *testing.T, root string) []treeFile {
	loader := make([]byte, 300<<10)
	for i := range loader {
		loader[i] = byte(i * 7)
	}
	files := []treeFile{
		{"EFI/BOOT/BOOTX64.EFI", loader},
		{"EFI/BOOT/grub.cfg", []byte("set timeout=0\nlinux /vmlinuz root=LABEL=root\n")},
		{"loader/entries/vdisk test – ünïcødé.conf", []byte("title vdisk\n")},
		{"loader/loader.conf", []byte("default vdisk*\n")},
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// manifestOf is sha256sum's output for the files, as busybox sha256sum -c
// reads it.
func manifestOf(files []treeFile) []byte {
	var b bytes.Buffer
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&b, "%s  ./%s\n", hex.EncodeToString(sum[:]), f.path)
	}
	return b.Bytes()
}

// makeImage creates a GPT image with a FAT32 ESP and a FAT16 data
// partition, both filled with tree by vdisk cp -r.
func makeImage(t *testing.T, vdisk, img, tree string) {
	hostCmd.Must(t, vdisk, "create", img, "--size", "192MiB", "--table", "gpt", "--part", "64MiB:esp:EFI", "--part", "rest:fat16:DATA")
	hostCmd.Must(t, vdisk, "cp", "-r", tree+"/.", img+"@1:/")
	hostCmd.Must(t, vdisk, "cp", "-r", tree+"/.", img+"@2:/")
}

// partition is what vdisk info --json says about one partition.
type partition struct {
	Start, Size int64
	FileSystem  struct{ Type string } `json:"file_system"`
}

func partitions(t *testing.T, vdisk, img string) []partition {
	var info struct{ Partitions []partition }
	if err := json.Unmarshal([]byte(hostCmd.Must(t, vdisk, "info", "--json", img)), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != 2 || info.Partitions[0].FileSystem.Type != "FAT32" || info.Partitions[1].FileSystem.Type != "FAT16" {
		t.Fatalf("%s: partitions %+v, want a FAT32 and a FAT16 one", img, info.Partitions)
	}
	return info.Partitions
}

func fileHash(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// servers are the vdisk serve processes of the running test.
var (
	serversMu sync.Mutex
	servers   []*testsupport.Process
)

// startServer starts vdisk serve on a free loopback port and returns the
// port. The test's cleanup kills it if stopServers did not stop it.
func startServer(t *testing.T, vdisk string, args ...string) int {
	p := testsupport.StartServe(t, vdisk, args...)
	serversMu.Lock()
	servers = append(servers, p)
	serversMu.Unlock()
	_, port, _ := net.SplitHostPort(p.Addr)
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("vdisk serve %s: listening on %q", strings.Join(args, " "), p.Addr)
	}
	return n
}

// stopServers sends SIGTERM (the server drains and flushes) and waits.
func stopServers(t *testing.T) {
	serversMu.Lock()
	defer serversMu.Unlock()
	for _, p := range servers {
		if err := p.Stop(40 * time.Second); err != nil {
			t.Errorf("vdisk serve %s: %v\n%s", strings.Join(p.Cmd.Args[1:], " "), err, p.Stderr())
		}
	}
	servers = nil
}

// resolveModuleNames lists the guest's modules in load order.
func resolveModuleNames(h host) ([]string, error) {
	mods, err := resolveModules(h.modules, guestModules)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.name
	}
	return names, nil
}

// checkResult is what the console said about one guest check.
type checkResult struct {
	begin, end time.Time
	fail       string
}

func (r *checkResult) ok() bool { return r != nil && !r.end.IsZero() && r.fail == "" }

// bootResult is what one boot of the VM reported.
type bootResult struct {
	checks     map[string]*checkResult
	hashes     map[string]string // HASH name sha256
	done       bool              // the guest printed DONE
	err        error             // why QEMU ended, if not by the guest's power-off
	firstBegin time.Duration
	total      time.Duration
	lines      []string
}

func (r *bootResult) tail(n int) string {
	return strings.Join(r.lines[max(0, len(r.lines)-n):], "\n")
}

// marker finds the guest's report lines even when kernel messages on the
// same serial line precede them.
var marker = regexp.MustCompile(`@@VMTEST (BEGIN|OK|FAIL|HASH|DONE) ?(\S*) ?(.*)`)

// kvmStall is how long a KVM guest may stay silent before the test takes
// KVM for unusable: under some nested hypervisors /dev/kvm answers but a
// guest never runs, while a working KVM guest prints its first kernel
// line within a second.
const kvmStall = 10 * time.Second

// boot runs QEMU with the kernel and initramfs, the serial console on
// stdout, until the guest powers off or vmDeadline passes. stalled reports
// a KVM guest that printed nothing within kvmStall (then res is nil).
func boot(t *testing.T, h host, accel, initrd, logPath string) (res *bootResult, stalled bool) {
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-m", "512", "-serial", "stdio",
		"-kernel", h.vmlinuz, "-initrd", initrd,
		// loglevel=6 shows the kernel's notices and warnings (its first
		// line, FAT and NBD complaints) but not its boot chatter.
		"-append", "console=ttyS0 panic=-1 loglevel=6 rdinit=/init",
		"-nic", "user,model=e1000",
	}
	if accel == "kvm" {
		args = append(args, "-accel", "kvm", "-cpu", "host", "-smp", "2")
	} else {
		args = append(args, "-accel", "tcg", "-cpu", "max", "-smp", "1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), vmDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.qemu, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", h.qemu, err)
	}
	res = &bootResult{checks: map[string]*checkResult{}, hashes: map[string]string{}}
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if len(res.lines) == 0 {
				close(first)
			}
			line := strings.TrimRight(sc.Text(), "\r")
			fmt.Fprintln(logFile, line)
			res.lines = append(res.lines, line)
			res.record(line, start)
		}
	}()
	select {
	case <-first:
	case <-done:
	case <-time.After(kvmStall):
		if accel == "kvm" {
			cancel()
			<-done
			cmd.Wait()
			return nil, true
		}
	}
	<-done
	err = cmd.Wait()
	res.total = time.Since(start)
	if ctx.Err() != nil {
		res.err = fmt.Errorf("killed after %v", vmDeadline)
	} else if err != nil {
		res.err = fmt.Errorf("qemu: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return res, false
}

// record takes one console line's marker, if it has one.
func (res *bootResult) record(line string, start time.Time) {
	m := marker.FindStringSubmatch(line)
	if m == nil {
		return
	}
	now := time.Now()
	switch m[1] {
	case "HASH":
		res.hashes[m[2]] = strings.TrimSpace(m[3])
		return
	case "DONE":
		res.done = true
		return
	}
	r := res.checks[m[2]]
	if r == nil {
		r = &checkResult{}
		res.checks[m[2]] = r
	}
	switch m[1] {
	case "BEGIN":
		r.begin = now
		if res.firstBegin == 0 {
			res.firstBegin = now.Sub(start)
		}
	case "OK":
		r.end = now
	case "FAIL":
		r.end = now
		if r.fail == "" { // the first failure is the cause
			r.fail = m[3]
		}
	}
}

// checkDisk reads the guest's changes back with vdisk (the whole volume
// copied out by vdisk cp -r) and checks both partitions with fsck.fat.
func checkDisk(t *testing.T, vdisk string, h host, img string, parts []partition, files []treeFile, hashes map[string]string) {
	out := t.TempDir()
	for i, vol := range []string{"esp", "data"} {
		dir := filepath.Join(out, vol)
		hostCmd.Must(t, vdisk, "cp", "-r", fmt.Sprintf("%s@%d:/", img, i+1), dir)
		got := readTree(t, dir)
		want := map[string]string{"MANIFEST.sha256": sum(manifestOf(files))}
		for _, f := range files {
			p := f.path
			switch {
			case p == renameFile:
				p = "renamed by linux – ok.txt"
			case strings.HasPrefix(p, renameDir+"/"):
				p = "directory renamed by linux" + strings.TrimPrefix(p, renameDir)
			case p == deleteFile || strings.HasPrefix(p, deleteDir+"/"):
				continue
			}
			want[p] = sum(f.data)
		}
		want["guest A moved by B/ñandú dir/deeper/notes – é 日本.txt"] = sum([]byte("hello from the Linux vfat driver on " + vol + "\n"))
		want["guest A moved by B/empty from linux"] = sum(nil)
		want["guest B — attach.txt"] = sum([]byte("written through vdisk attach on " + vol + "\n"))
		if vol == "data" {
			want["guest-big.bin"] = hashes["guest-big.bin"]
			want["attach-big.bin"] = hashes["attach-big.bin"]
			if got := sum([]byte(hostCmd.Must(t, vdisk, "cat", img+"@2:/guest-big.bin"))); got != hashes["guest-big.bin"] {
				t.Errorf("data: vdisk cat /guest-big.bin: sha256 %s, the guest wrote %s", got, hashes["guest-big.bin"])
			}
		}
		for p, w := range want {
			if g, ok := got[p]; !ok {
				t.Errorf("%s: vdisk does not find %q, which the guest left there", vol, p)
			} else if g != w {
				t.Errorf("%s: %q has sha256 %s on the host, want %s", vol, p, g, w)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("%s: vdisk finds %q, which the guest renamed or deleted", vol, p)
			}
		}
		// vdisk ls lists the root as the guest left it.
		var entries []struct{ Name string }
		if err := json.Unmarshal([]byte(hostCmd.Must(t, vdisk, "ls", "--json", fmt.Sprintf("%s@%d:/", img, i+1))), &entries); err != nil {
			t.Fatal(err)
		}
		top := map[string]bool{}
		for p := range want {
			top[strings.SplitN(p, "/", 2)[0]] = true
		}
		for _, e := range entries {
			if !top[e.Name] {
				t.Errorf("%s: vdisk ls / lists %q, which the guest did not leave there", vol, e.Name)
			}
			delete(top, e.Name)
		}
		for n := range top {
			t.Errorf("%s: vdisk ls / does not list %q", vol, n)
		}
		// fsck.fat reads a whole file: copy the partition out, as dd would.
		part := filepath.Join(out, vol+".fat")
		extract(t, img, part, parts[i].Start, parts[i].Size)
		ctx, cancel := context.WithTimeout(context.Background(), hostCmdTimeout)
		b, err := exec.CommandContext(ctx, h.fsckFat, "-n", part).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("fsck.fat -n on %s after the guest's changes: %v\n%s", vol, err, b)
		}
	}
}

// checkCOW checks that the base image is untouched and that vdisk reads
// the guest's writes through the same overlay.
func checkCOW(t *testing.T, vdisk, base, overlay, baseHash string) {
	if got := fileHash(t, base); got != baseHash {
		t.Errorf("base.img changed under the copy-on-write filter")
	}
	st, err := os.Stat(overlay)
	if err != nil || st.Size() == 0 {
		t.Errorf("overlay %s: %v, want the guest's writes in it", overlay, err)
	}
	withOverlay := "cow:overlay=" + overlay
	if got := hostCmd.Must(t, vdisk, "--filter", withOverlay, "cat", base+"@1:/cow – written.txt"); got != "into the overlay\n" {
		t.Errorf("through the overlay, the guest's file holds %q", got)
	}
	// The base alone still has what the guest deleted, and not what it wrote.
	if got := hostCmd.Must(t, vdisk, "cat", base+"@1:/"+deleteFile); got != "to be deleted by the guest\n" {
		t.Errorf("base.img lost %q: %q", deleteFile, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostCmdTimeout)
	defer cancel()
	if err := exec.CommandContext(ctx, vdisk, "cat", base+"@1:/cow – written.txt").Run(); err == nil {
		t.Errorf("base.img without the overlay has the guest's file")
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// readTree returns the sha256 of every file under root, by slash path.
func readTree(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = sum(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// extract copies length bytes at off of img into a file of its own.
func extract(t *testing.T, img, dst string, off, length int64) {
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, io.NewSectionReader(in, off, length)); err != nil {
		t.Fatal(err)
	}
}
