package build

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/build/confuse"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/partition"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in      string
		pct     bool
		want    int64
		percent bool
		err     string
	}{
		{"4095K", false, 4095 << 10, false, ""},
		{"1k", false, 1024, false, ""},
		{"3M", false, 3 << 20, false, ""},
		{"2G", false, 2 << 30, false, ""},
		{"33s", false, 33 * 512, false, ""},
		{"0x10k", false, 16 << 10, false, ""},
		{"010", false, 8, false, ""}, // octal, as strtoull with base 0
		{"0", false, 0, false, ""},
		{"129K", false, 129 << 10, false, ""},
		{"150%", true, 150, true, ""},
		{"150%", false, 0, false, `unknown suffix "%"`},
		{"64MB", false, 0, false, "nothing may follow the suffix"},
		{"1T", false, 0, false, `unknown suffix "T"`},
		{"08", false, 0, false, `unknown suffix "8"`},
		{"1.5M", false, 0, false, `unknown suffix ".5M"`},
		{"", false, 0, false, "want a number"},
		{"x", false, 0, false, "want a number"},
		{"99999999999999999999", false, 0, false, "want a number"},
		{"9999999999999G", false, 0, false, "too large"},
		{"0x100000000000000", false, 0, false, "more than 32 PiB"},
	} {
		got, pct, err := parseSize(c.in, c.pct)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseSize(%q) = %d, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want || pct != c.percent {
			t.Errorf("parseSize(%q) = %d, %v, %v; want %d, %v", c.in, got, pct, err, c.want, c.percent)
		}
	}
}

func TestParseIntBool(t *testing.T) {
	for in, want := range map[string]int64{"0x83": 0x83, "0xEE": 0xee, "12": 12, "017": 15, "0b101": 5, "-3": -3, "0": 0} {
		if got, err := parseInt(in); err != nil || got != want {
			t.Errorf("parseInt(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0x", "12a", "0b", "0b2", "yes"} {
		if _, err := parseInt(bad); err == nil {
			t.Errorf("parseInt(%q) accepted", bad)
		}
	}
	for in, want := range map[string]bool{"true": true, "YES": true, "on": true, "false": false, "No": false, "OFF": false} {
		if got, err := parseBool(in); err != nil || got != want {
			t.Errorf("parseBool(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"1", "0", "y", ""} {
		if _, err := parseBool(bad); err == nil {
			t.Errorf("parseBool(%q) accepted (libconfuse refuses it)", bad)
		}
	}
	if h, err := parseHole(" ( 440 ; 33K ) "); err != nil || h != (Hole{440, 33 << 10}) {
		t.Errorf("parseHole = %v, %v", h, err)
	}
	for _, bad := range []string{"440;33K", "(440, 33K)", "(33K; 440)", "(x; 1)"} {
		if _, err := parseHole(bad); err == nil {
			t.Errorf("parseHole(%q) accepted", bad)
		}
	}
}

// TestGenimagePRNG checks the identities drawn with genimage's randomseed
// against the disk genimage wrote for its own test (randomseed.expected:
// seed 1, a GPT disk GUID then one partition GUID).
func TestGenimagePRNG(t *testing.T) {
	p := newGenimagePRNG("1")
	disk, part := p.uuid(), p.uuid()
	// randomseed.expected holds them as stored: at 0x238 and 0x410.
	want := func(stored string) partition.GUID {
		var b [16]byte
		for i, f := range strings.Fields(stored) {
			b[i] = byte(digitValue(f[0])<<4 | digitValue(f[1]))
		}
		var g partition.GUID // stored order back to text order
		g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]
		copy(g[8:], b[8:])
		return g
	}
	if w := want("18 07 21 30 00 55 81 53 ff 99 08 fd 68 07 00 40"); disk != w {
		t.Errorf("disk GUID %v, genimage wrote %v", disk, w)
	}
	if w := want("62 09 50 60 00 40 99 61 ff 94 03 fd 88 82 00 46"); part != w {
		t.Errorf("partition GUID %v, genimage wrote %v", part, w)
	}
	if a, b := newGenimagePRNG("2").uuid(), newGenimagePRNG("3").uuid(); a == b {
		t.Errorf("seeds 2 and 3 gave the same GUID")
	}
}

func loadString(t *testing.T, text string) (*Config, error) {
	t.Helper()
	nodes, err := confuse.Parse("test.cfg", []byte(text), confuse.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		return nil, err
	}
	return FromNodes("test.cfg", nodes)
}

// TestSchemaErrors: what genimage's schema refuses, or vdisk cannot build,
// is an error naming the file, the line and the reason.
func TestSchemaErrors(t *testing.T) {
	for _, c := range []struct{ name, cfg, want string }{
		{"unknown option", "image a {\n hdimage {}\n partition p {\n  sise = 1M\n }\n}", `test.cfg:4: image "a": partition "p": unknown option "sise" (did you mean "size"?)`},
		{"unknown top", "images a {}", `test.cfg:1: configuration: unknown option "images" (did you mean "image"?)`},
		{"foreign type", "image rootfs.ext4 {\n ext4 { label = \"x\" }\n}", "test.cfg:2: image \"rootfs.ext4\": vdisk does not build ext4 images: build rootfs.ext4 with mke2fs -t ext4 -d ROOT"},
		{"squashfs", "image r.sqfs {\n squashfs {}\n}", "with mksquashfs, put it in the input path"},
		{"no type", "image a {\n size = 1M\n}", `test.cfg:1: image "a": no image type given`},
		{"two types", "image a {\n hdimage {}\n vfat {}\n}", "more than one image type given (hdimage, vfat)"},
		{"two hdimage", "image a {\n hdimage {}\n hdimage {}\n}", `a second "hdimage" section (the first is at line 2)`},
		{"duplicate partition", "image a {\n hdimage {}\n partition p {}\n partition p {}\n}", `test.cfg:4: image "a": a second partition "p"`},
		{"section as option", "image a {\n hdimage = 1\n}", `"hdimage" is a section`},
		{"option as section", "image a {\n hdimage {}\n size {}\n}", `"size" is an option`},
		{"list for a string", "image a {\n hdimage {}\n size = {1M}\n}", `option "size" takes one value`},
		{"bad bool", "image a {\n hdimage { fill = 1 }\n}", `test.cfg:2: image "a": hdimage: option "fill": "1" is not a boolean`},
		{"bad int", "image a {\n hdimage {}\n partition p { partition-type = linux }\n}", `option "partition-type": "linux" is not an integer`},
		{"type out of range", "image a {\n hdimage {}\n partition p { partition-type = 0x183 }\n}", "is not a byte"},
		{"MB", "image a {\n hdimage {}\n size = 64MB\n}", "nothing may follow the suffix"},
		{"flashtype", "image a {\n hdimage {}\n flashtype = \"nand\"\n}", "flash types are for flash, jffs2, ubi and ubifs images"},
		{"partition in vfat", "image a {\n vfat {}\n partition p {}\n}", "a vfat image has no partition sections: add files with"},
		{"no image outside table", "image a {\n hdimage {}\n partition p {\n in-partition-table = false\n }\n}", "no image given"},
		{"file without image", "image a {\n vfat {\n file x {}\n }\n}", `file "x": no image given`},
		{"srcpath and mountpoint", "image a {\n vfat {}\n srcpath = \"x\"\n mountpoint = \"/boot\"\n}", "srcpath and mountpoint cannot both be given"},
		{"title missing", "image {\n hdimage {}\n}", "section \"image\" needs a title"},
		{"extended slot", "image a {\n hdimage { extended-partition = 5 }\n}", "extended-partition 5"},
		{"table type", "image a {\n hdimage { partition-table-type = \"apm\" }\n}", `partition-table-type "apm"`},
		{"two config sections", "config {}\nconfig {}", "a second \"config\" section"},
		{"gpt-shortcuts list", "config { gpt-shortcuts { a = {b} } }", "want name = \"value\" lines only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadString(t, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, c.want)
			}
			if !errors.Is(err, ErrConfig) && !errors.Is(err, confuse.ErrSyntax) {
				t.Errorf("%v wraps neither ErrConfig nor ErrSyntax", err)
			}
		})
	}
}

func TestIncludeWhere(t *testing.T) {
	inc := filepath.Join(t.TempDir(), "inc.cfg")
	if err := os.WriteFile(inc, []byte("size = 1M\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadString(t, "image a {\n hdimage {}\n partition p {\n include(\""+inc+"\")\n }\n}")
	if err == nil || !strings.Contains(err.Error(), `test.cfg:4: image "a": partition "p": include() is allowed only at the top level and in image sections`) {
		t.Errorf("include in a partition: %v", err)
	}
	c, err := loadString(t, "image a {\n hdimage {}\n partition p {}\n include(\""+inc+"\")\n}")
	if err != nil || !c.Images[0].Size.Set || c.Images[0].Size.Bytes != 1<<20 {
		t.Errorf("include in an image: %v", err)
	}
}

// TestConfigSettings checks genimage's precedence: flags, then the config
// section, then GENIMAGE_* variables, then defaults; and that tool paths
// are accepted with a warning.
func TestConfigSettings(t *testing.T) {
	c, err := loadString(t, "config {\n outputpath = cfg-out\n inputpath = cfg-in\n mkdosfs = \"/opt/mkdosfs\"\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GENIMAGE_OUTPUTPATH": "env-out", "GENIMAGE_ROOTPATH": "env-root", "GENIMAGE_TMPPATH": "env-tmp"}
	o := &Options{Flags: map[string]string{"tmppath": "flag-tmp"}, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	for name, want := range map[string]string{"outputpath": "cfg-out", "inputpath": "cfg-in", "rootpath": "env-root", "tmppath": "flag-tmp", "loglevel": "1"} {
		if got, _ := o.Setting(c, name); got != want {
			t.Errorf("setting %s = %q, want %q", name, got, want)
		}
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "test.cfg:4: config option mkdosfs") || !strings.Contains(c.Warnings[0], "is not used") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

// suiteInput makes the input files genimage's hdimage tests make.
func suiteInput(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	for name, size := range map[string]int64{"part1.img": 7 * 512, "part2.img": 11 * 512, "part3.img": 0, "3K.img": 3 << 10, "70K.img": 70 << 10} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSuiteFailCases checks that the configurations genimage's suite
// expects to fail fail for the reason they were written for (the suite
// itself only checks that they fail).
func TestSuiteFailCases(t *testing.T) {
	suite := testsupport.GenimageDir(t)
	in := suiteInput(t)
	for _, c := range []struct {
		config string
		env    map[string]string
		want   string
	}{
		{"hdimage2.config", nil, `partition "part1": its size 5120 is too small for part2.img (5632 bytes)`},
		{"hdimage-fail1.config", nil, "partition-type-uuid needs partition-table-type gpt or hybrid"},
		{"hdimage-fail2.config", nil, "partition-type needs partition-table-type mbr or hybrid"},
		// Written for "missing partition-type" in a hybrid table, but it
		// has neither size nor image; genimage stops there too.
		{"hdimage-fail3.config", nil, `partition "part1": size is zero`},
		{"hdimage-fail4.config", nil, "disk-uuid needs partition-table-type gpt or hybrid"},
		{"hdimage-fail5.config", nil, "disk-signature needs partition-table-type mbr or hybrid"},
		{"hdimage-fail6.config", nil, `the extended partition (with the EBR of partition "part4" at byte 4193792) overlaps partition "part3"`},
		{"hdimage-fail7.config", nil, "4 partitions have a partition-type, but a hybrid MBR has room for 3"},
		{"hdimage-fail8.config", nil, `partition "part1" is forced-primary, but extended-partition = 1 makes it the first logical partition`},
		{"hdimage-fail9.config", nil, `partition "primary5": more than four entries in the MBR`},
		{"hdimage-fail10.config", nil, `partition "primary4": more than four entries in the MBR`},
		{"hdimage-fail11.config", nil, `partition "extended5": after a forced-primary partition, every partition must be forced-primary`},
		{"gpt-overlap1.config", nil, `the GPT entry array (bytes 1024 to 17408) overlaps partition "SPL" (bytes 1024 to 25600): a boot loader that overlaps the partition table must declare the overlapping range a hole`},
		{"gpt-overlap3.config", nil, `the GPT entry array (bytes 30720 to 47104) overlaps partition "aaa" (bytes 32768 to 1081344)`},
		{"gpt-invalid-partition-type1.config", nil, `partition-type-uuid "unknown-shortcut" is neither a UUID nor a known name`},
		{"gpt-invalid-partition-type2.config", nil, `partition-type-uuid "30f239f3-275c-4e0d-9b61-Ka385b7b80f9" is neither a UUID`},
		{"hole.config", map[string]string{"GPT_LOCATION": "64K"}, `the GPT entry array (bytes 65536 to 81920) overlaps partition "bootloader" (bytes 0 to 71680)`},
		{"hole.config", map[string]string{"OFFSET": "64K"}, `partition "foo" (bytes 132096 to 135168) overlaps partition "bootloader" (bytes 65536 to 137216)`},
	} {
		t.Run(c.config, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
			conf, err := Load(filepath.Join(suite, c.config), LoadOptions{LookupEnv: lookup})
			if err == nil {
				_, err = NewPlan(conf, &Options{Flags: map[string]string{"inputpath": in, "outputpath": t.TempDir(), "rootpath": "/nonexistent", "tmppath": t.TempDir()}, LookupEnv: lookup})
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v\nwant ErrConfig with %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), filepath.Join(suite, c.config)+":") {
				t.Errorf("%v does not name the file and line", err)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		"-n 'vfat-test'":             {"-n", "vfat-test"},
		`-F 32 -n "MY BOOT" -s 4`:    {"-F", "32", "-n", "MY BOOT", "-s", "4"},
		`-n it\'s`:                   {"-n", "it's"},
		`-n "a\"b\\c"`:               {"-n", `a"b\c`},
		"  -i\t0x1234  ":             {"-i", "0x1234"},
		`-n ''`:                      {"-n", ""},
		`-n a'b c'd`:                 {"-n", "ab cd"},
		"":                           nil,
		`--invariant --codepage=850`: {"--invariant", "--codepage=850"},
		`-n "tab\there"`:             {"-n", `tab\there`},
		`-n 'x#y' -n a#b`:            {"-n", "x#y", "-n", "a#b"},
	} {
		got, err := splitWords(in)
		if err != nil || strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"-n $LABEL", "-n 'x", `-n "x`, "-F 32; rm -rf /", "-n `id`", `-n "$X"`, "-n *", "# comment"} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) accepted", bad)
		}
	}
}
