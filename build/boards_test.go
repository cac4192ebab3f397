package build

// Real board configurations (testdata/boards, after Buildroot's) built
// from generated payloads, and checked by tools that share no code with
// vdisk: sfdisk for the tables, fsck.fat for every FAT volume, mtools for
// what the volumes hold (copied back and compared byte for byte with the
// inputs), e2fsck for the ext4 partitions; and genimage 16, building the
// same configuration from the same inputs, for the layout and the file
// trees.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/partition"
)

// overlayNames are Raspberry Pi overlay names: long, lower case, with
// dashes and digits, as the firmware's overlays directory holds ~200 of.
var overlayNames = []string{"adafruit-st7735r", "adafruit18", "ads1015", "ads7846", "akkordion-iqdacplus", "allo-boss-dac-pcm512x-audio",
	"allo-digione", "allo-katana-dac-audio", "allo-piano-dac-pcm512x-audio", "applepi-dac", "at86rf233", "audioinjector-addons",
	"audremap", "balena-fin", "bmp085_i2c-sensor", "cma", "dht11", "dionaudio-loco", "disable-bt", "disable-wifi", "dpi18", "dpi24",
	"dwc-otg", "dwc2", "enc28j60", "fe-pi-audio", "gpio-fan", "gpio-ir", "gpio-key", "gpio-poweroff", "gpio-shutdown", "hifiberry-amp",
	"hifiberry-dac", "hifiberry-dacplus", "hifiberry-dacplusadcpro", "hifiberry-digi-pro", "hy28a", "hy28b-2017", "i2c-gpio",
	"i2c-mux", "i2c-pwm-pca9685a", "i2c-rtc-gpio", "i2c-rtc", "i2c-sensor", "i2c0", "i2c1", "i2s-gpio28-31", "imx219", "imx477",
	"iqaudio-codec", "iqaudio-dacplus", "justboom-both", "mcp2515-can0", "mcp3008", "miniuart-bt", "mmc", "pi3-disable-bt",
	"pitft28-capacitive", "pitft35-resistive", "pps-gpio", "pwm-2chan", "rpi-poe-plus", "sc16is752-spi1", "sdio", "spi0-1cs",
	"spi1-3cs", "tc358743", "uart2", "uart5", "vc4-fkms-v3d", "vc4-kms-dpi-hyperpixel4sq", "vc4-kms-v3d-pi4", "w1-gpio-pullup"}

// boardInputs writes the payloads every board configuration names into
// in, and rootfs.ext4 with mke2fs; the random ones are seeded, so two runs
// give the same bytes.
func boardInputs(t testing.TB, in string) {
	t.Helper()
	r := rand.New(rand.NewPCG(16, 16))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	files := map[string][]byte{
		"Image":                         random(6<<20 + 4321),
		"zImage":                        random(4<<20 + 777),
		"bzImage":                       random(5<<20 + 99),
		"rpi-firmware/cmdline.txt":      []byte("root=/dev/mmcblk0p2 rootwait console=tty1 console=ttyAMA0,115200\n"),
		"rpi-firmware/config.txt":       []byte("# Please note that this is only a sample\nstart_file=start4.elf\nfixup_file=fixup4.dat\nkernel=Image\narm_64bit=1\ndisable_overscan=1\ndtoverlay=miniuart-bt\n"),
		"rpi-firmware/fixup4.dat":       random(5 << 10),
		"rpi-firmware/start4.elf":       random(2200 << 10),
		"rpi-firmware/overlays/README":  []byte("Device tree overlays, one .dtbo per overlay.\n"),
		"MLO":                           random(100 << 10),
		"u-boot.img":                    random(900 << 10),
		"uEnv.txt":                      []byte("bootpart=0:1\nbootdir=\nuenvcmd=run loadimage;run loadfdt;run mmcboot\n"),
		"extlinux/extlinux.conf":        []byte("label linux\n  kernel /zImage\n  fdtdir /\n  append console=ttyS0,115200 root=/dev/mmcblk0p2 rootwait\n"),
		"efi-part/EFI/BOOT/bootx64.efi": random(1 << 20),
		"efi-part/EFI/BOOT/grub.cfg":    []byte("set default=\"0\"\nset timeout=\"5\"\nmenuentry \"Buildroot\" {\n\tlinux /bzImage root=PARTUUID=a3c2d8d3-5e4b-4f6c-8a0e-0b1c2d3e4f50 rootwait console=tty1\n}\n"),
		"imx8-boot-sd.bin":              random(1500 << 10),
		"imx8mq-evk.dtb":                random(48 << 10),
		"boot.scr":                      append([]byte{0x27, 0x05, 0x19, 0x56}, random(700)...),
	}
	for _, n := range []string{"bcm2711-rpi-4-b", "bcm2711-rpi-400", "bcm2711-rpi-cm4", "am335x-evm", "am335x-evmsk", "am335x-bone",
		"am335x-boneblack", "am335x-bonegreen", "am335x-boneblack-wireless", "am335x-bonegreen-wireless"} {
		files[n+".dtb"] = random(40<<10 + r.IntN(20<<10))
	}
	for _, n := range overlayNames {
		files["rpi-firmware/overlays/"+n+".dtbo"] = random(1<<10 + r.IntN(4<<10))
	}
	// The root file system tree: /boot for boot-from-root.cfg, and what an
	// ESP made from a directory holds (srcpath "esp", relative to the
	// working directory, which the test makes the input directory).
	files["root/boot/vmlinuz-6.1.0"] = random(3<<20 + 5)
	files["root/boot/initrd.img-6.1.0"] = random(2<<20 + 17)
	files["root/boot/extlinux/extlinux.conf"] = files["extlinux/extlinux.conf"]
	files["root/boot/dtbs/6.1.0/broadcom/bcm2711-rpi-4-b.dtb"] = files["bcm2711-rpi-4-b.dtb"]
	files["root/etc/hostname"] = []byte("board\n")
	files["root/etc/os-release"] = []byte("NAME=Buildroot\nVERSION_ID=2024.02\n")
	files["esp/EFI/BOOT/BOOTAA64.EFI"] = random(800 << 10)
	files["esp/EFI/systemd/systemd-bootaa64.efi"] = random(100 << 10)
	files["esp/loader/loader.conf"] = []byte("default buildroot.conf\ntimeout 3\n")
	files["esp/loader/entries/buildroot – ünïcødé.conf"] = []byte("title Buildroot\nlinux /vmlinuz\n")
	for name, data := range files {
		p := filepath.Join(in, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("mke2fs", "-q", "-t", "ext4", "-L", "rootfs", "-U", "0b1c2d3e-4f50-4a3c-8d8d-3c2d8d3a5e4b",
		"-E", "root_owner=0:0", "-d", filepath.Join(in, "root"), filepath.Join(in, "rootfs.ext4"), "48M")
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
}

var boardTools = []string{"sfdisk", "fsck.fat", "mdir", "mcopy", "mke2fs", "e2fsck", "diff"}

func needBoardTools(t testing.TB) {
	t.Helper()
	for _, tool := range boardTools {
		testsupport.NeedTool(t, tool)
	}
}

// partitionBytes copies a placed partition of img into a file of its own,
// as fsck.fat and e2fsck have no offset option.
func partitionBytes(t *testing.T, img string, p *Placed) string {
	t.Helper()
	return testsupport.ExtractPartition(t, img, p.Offset, p.Size)
}

// mtoolsTree copies a FAT volume's files out with mcopy into a new
// directory, and lists them with mdir.
func mtoolsTree(t *testing.T, vol string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	env := append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8")
	cmd := exec.Command("mcopy", "-s", "-n", "-m", "-i", vol, "::*", dir+"/")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil && !bytes.Contains(out, []byte("No match")) {
		t.Fatalf("mcopy -s: %v\n%s", err, out)
	}
	cmd = exec.Command("mdir", "-/", "-b", "-i", vol, "::/")
	cmd.Env = env
	out, _ := cmd.Output()
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(l, "::/"), "/"))
		}
	}
	sort.Strings(names)
	return dir, names
}

// expectTree makes the tree a vfat image should hold, from its
// configuration and the inputs, the way genimage's mcopy would copy it.
func expectTree(t *testing.T, p *Plan, img *Image) string {
	t.Helper()
	tr, err := p.content(img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	err = tr.walk(func(rel string, n *tree) error {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if n.dir {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(n.src)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var sfdiskPart = regexp.MustCompile(`(?m)^\S+ : start=\s*(\d+), size=\s*(\d+), type=(\S+?)(, uuid=\S+?)?(, name="[^"]*")?(, bootable)?(, attrs="[^"]*")?$`)

func TestBoards(t *testing.T) {
	needBoardTools(t)
	in := t.TempDir()
	boardInputs(t, in)
	configs, _ := filepath.Glob("testdata/boards/*.cfg")
	if len(configs) < 5 {
		t.Fatalf("%d board configurations", len(configs))
	}
	for _, cfg := range configs {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			abs, _ := filepath.Abs(cfg)
			wd, _ := os.Getwd()
			if err := os.Chdir(in); err != nil { // srcpath names are relative to it
				t.Fatal(err)
			}
			defer os.Chdir(wd)
			out := t.TempDir()
			conf, err := Load(abs, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPlan(conf, &Options{Flags: map[string]string{"inputpath": in, "outputpath": out, "loglevel": "0",
				"rootpath": filepath.Join(in, "root"), "tmppath": filepath.Join(t.TempDir(), "tmp")}, Repro: Repro{Seed: "board", Seeded: true}})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Build(); err != nil {
				t.Fatal(err)
			}
			for _, img := range p.Order {
				if img.Type != "hdimage" {
					continue
				}
				disk := p.OutputPath(img)
				// genimage's test suite's check: sfdisk -V reports nothing but
				// unallocated space.
				v, err := exec.Command("sfdisk", "-q", "-V", disk).CombinedOutput()
				for _, line := range strings.Split(strings.TrimSpace(string(v)), "\n") {
					if line != "" && !strings.Contains(line, "unallocated") {
						t.Errorf("sfdisk -V %s: %v\n%s", img.File, err, v)
						break
					}
				}
				dump, err := exec.Command("sfdisk", "-d", disk).Output()
				if err != nil {
					t.Fatalf("sfdisk -d: %v", err)
				}
				rows := sfdiskPart.FindAllStringSubmatch(string(dump), -1)
				l := p.Layouts[img]
				n := 0
				for _, part := range l.Parts {
					if !part.InTable || part == l.Extended {
						continue
					}
					row := rows[n]
					n++
					start, _ := strconv.ParseInt(row[1], 10, 64)
					if start*512 != part.Offset {
						t.Errorf("%s: sfdisk puts partition %d at %d, the layout at %d", img.File, n, start*512, part.Offset)
					}
					if part.Partition.Bootable != (row[6] != "" || strings.Contains(row[7], "LegacyBIOSBootable")) {
						t.Errorf("%s: partition %s: bootable %v, sfdisk: %q", img.File, part.Name, part.Partition.Bootable, row[0])
					}
					vol := partitionBytes(t, disk, part)
					switch {
					case part.Image != nil && part.Image.Type == "vfat":
						if out, err := exec.Command("fsck.fat", "-n", vol).CombinedOutput(); err != nil {
							t.Errorf("fsck.fat -n %s partition %s: %v\n%s", img.File, part.Name, err, out)
						}
						got, _ := mtoolsTree(t, vol)
						want := expectTree(t, p, part.Image)
						if out, err := exec.Command("diff", "-r", want, got).CombinedOutput(); err != nil {
							t.Errorf("%s partition %s: mtools reads back another tree:\n%s", img.File, part.Name, out)
						}
					case part.Image != nil && strings.HasSuffix(part.Image.File, ".ext4"):
						if out, err := exec.Command("e2fsck", "-fn", vol).CombinedOutput(); err != nil {
							t.Errorf("e2fsck -fn %s partition %s: %v\n%s", img.File, part.Name, err, out)
						}
					}
				}
				if n != len(rows) {
					t.Errorf("%s: sfdisk lists %d partitions, the layout %d", img.File, len(rows), n)
				}
			}
		})
	}
}

// dpsNames are the Discoverable Partitions Specification names the board
// configurations use, which genimage 16 predates: for its runs they are
// written as the GUIDs they stand for.
var dpsNames = regexp.MustCompile(`partition-type-uuid = "(root-arm64|root-x86-64|xbootldr|esp)"`)

// genimage16Config rewrites a configuration into one genimage 16 reads:
// type names it predates as GUIDs, and size = auto as the size vdisk chose.
func genimage16Config(t *testing.T, cfg string, p *Plan) string {
	t.Helper()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := dpsNames.ReplaceAllStringFunc(string(data), func(m string) string {
		g, _ := partition.GPTTypeByName(dpsNames.FindStringSubmatch(m)[1])
		return `partition-type-uuid = "` + strings.ToLower(g.String()) + `"`
	})
	for _, img := range p.Config.Images {
		if img.Size.Auto {
			s = strings.Replace(s, "size = auto", fmt.Sprintf("size = %d", p.Sizes[img]), 1)
		}
	}
	out := filepath.Join(t.TempDir(), filepath.Base(cfg))
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBoardsMatchGenimage16 builds each board configuration with genimage 16
// too, from the same inputs: the partition layouts must be the same, every
// FAT volume must hold the same tree (as mtools reads it, byte for byte)
// with the same label, FAT type and cluster size, and every other
// partition the same bytes. A size vdisk chose for size = auto is given to
// genimage, whose mcopy must then fit the content into it.
func TestBoardsMatchGenimage16(t *testing.T) {
	needBoardTools(t)
	testsupport.NeedTool(t, "genimage")
	in := t.TempDir()
	boardInputs(t, in)
	configs, _ := filepath.Glob("testdata/boards/*.cfg")
	for _, cfg := range configs {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			abs, _ := filepath.Abs(cfg)
			wd, _ := os.Getwd()
			if err := os.Chdir(in); err != nil {
				t.Fatal(err)
			}
			defer os.Chdir(wd)
			v := t.TempDir()
			conf, err := Load(abs, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPlan(conf, &Options{Flags: map[string]string{"inputpath": in, "outputpath": v, "loglevel": "0",
				"rootpath": filepath.Join(in, "root"), "tmppath": filepath.Join(t.TempDir(), "tmp")}, Repro: Repro{Seed: "x", Seeded: true}})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Build(); err != nil {
				t.Fatal(err)
			}
			g := t.TempDir()
			cmd := exec.Command("genimage", "--loglevel", "1", "--config", genimage16Config(t, abs, p), "--inputpath", in,
				"--outputpath", g, "--rootpath", filepath.Join(in, "root"), "--tmppath", filepath.Join(t.TempDir(), "tmp"))
			cmd.Dir = in
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("genimage: %v\n%s", err, out)
			}
			for _, img := range p.Order {
				if img.Type == "file" {
					continue
				}
				vf, gf := p.OutputPath(img), filepath.Join(g, img.File)
				switch img.Type {
				case "vfat":
					compareVolumes(t, img.File, vf, gf)
				case "hdimage":
					l := p.Layouts[img]
					if vs, gs := chanceUUIDs(sfdiskDump(t, vf), l), chanceUUIDs(sfdiskDump(t, gf), l); vs != gs {
						t.Errorf("%s: sfdisk -d differs:\ngenimage:\n%s\nvdisk:\n%s", img.File, gs, vs)
						continue
					}
					n := 0
					for _, part := range l.Parts {
						if !part.InTable || part == l.Extended {
							continue
						}
						n++
						va, ga := partitionBytes(t, vf, part), partitionBytes(t, gf, part)
						what := fmt.Sprintf("%s partition %s", img.File, part.Name)
						if part.Image != nil && part.Image.Type == "vfat" {
							compareVolumes(t, what, va, ga)
						} else if testsupport.HashFile(t, va) != testsupport.HashFile(t, ga) {
							t.Errorf("%s: bytes differ from genimage's", what)
						}
					}
				}
			}
		})
	}
}

var dumpUUID = regexp.MustCompile(`uuid=[0-9A-F-]{36}`)

// chanceUUIDs blanks, in an sfdisk dump, the GUIDs of partitions the
// configuration leaves to chance (genimage 16 draws them at random).
func chanceUUIDs(dump string, l *Layout) string {
	lines := strings.Split(dump, "\n")
	n := 0
	for i, line := range lines {
		if !strings.Contains(line, " : start=") {
			continue
		}
		for ; n < len(l.Parts) && (!l.Parts[n].InTable || l.Parts[n] == l.Extended); n++ {
		}
		if n < len(l.Parts) && l.Parts[n].Partition.PartitionUUID == "" {
			lines[i] = dumpUUID.ReplaceAllString(line, "uuid=(chance)")
		}
		n++
	}
	return strings.Join(lines, "\n")
}

// compareVolumes compares two FAT volumes as outside tools see them: the
// trees mtools copies out, the label fatlabel reads, and the FAT type and
// cluster size in the boot sector.
func compareVolumes(t *testing.T, what, vdiskVol, genimageVol string) {
	t.Helper()
	vt, vnames := mtoolsTree(t, vdiskVol)
	gt, gnames := mtoolsTree(t, genimageVol)
	if strings.Join(vnames, "\n") != strings.Join(gnames, "\n") {
		t.Errorf("%s: mdir lists\n%q\ngenimage's\n%q", what, vnames, gnames)
	}
	if out, err := exec.Command("diff", "-r", gt, vt).CombinedOutput(); err != nil {
		t.Errorf("%s: the files differ from genimage's:\n%s", what, out)
	}
	label := func(vol string) string {
		out, _ := exec.Command("fatlabel", vol).Output()
		return strings.TrimSpace(string(out))
	}
	if a, b := label(vdiskVol), label(genimageVol); a != b {
		t.Errorf("%s: label %q, genimage's %q", what, a, b)
	}
	bpb := func(vol string) string {
		f, err := os.Open(vol)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 90)
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		// bytes/sector, sectors/cluster, reserved, FATs, root entries,
		// total sectors, media, FAT size; and the type string.
		typ := string(b[54:62])
		if b[22] == 0 && b[23] == 0 {
			typ = string(b[82:90])
		}
		return fmt.Sprintf("% x %s", b[11:24], typ)
	}
	if a, b := bpb(vdiskVol), bpb(genimageVol); a != b {
		t.Errorf("%s: BPB %s, genimage's (mkfs.fat's) %s", what, a, b)
	}
}
