package ondisk_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/fattest"
	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
)

// TestOndiskFuzzSeeds rewrites the seed corpora from mkfs.fat images filled
// by mtools: boot sectors of every format, directory clusters with long
// names, and FAT prefixes with real chains.
func TestOndiskFuzzSeeds(t *testing.T) {
	if !*ondisk.GenSeeds {
		t.Skip("run with -odgenseeds to rewrite testdata/fuzz")
	}
	fattest.Need(t, "mkfs.fat", "mcopy")
	write := func(fuzzer, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		sb.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&sb, "[]byte(%q)\n", v)
			case uint8:
				fmt.Fprintf(&sb, "uint8(%d)\n", v)
			case uint16:
				fmt.Fprintf(&sb, "uint16(%d)\n", v)
			case uint32:
				fmt.Fprintf(&sb, "uint32(%d)\n", v)
			case string:
				fmt.Fprintf(&sb, "string(%q)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range odFormats {
		img := fattest.Mkfs(t, f.kib, f.opts...)
		if f.name != "fat32-small" {
			odFill(t, img)
		}
		v := fattest.Open(t, img)
		write("FuzzBootSector", f.name, v.Img[:512])
		// The first cluster of the root directory, or 2 KiB of the fixed one.
		blocks := v.DirBlocks(0)
		root := blocks[0][:min(2048, len(blocks[0]))]
		write("FuzzDirEntries", f.name, root, uint16(7))
		fat := v.FAT.Bytes()
		write("FuzzFATChain", f.name, fat[:min(768, len(fat))], uint8(f.typ/16), uint32(2), uint8(5))
	}
	for i, s := range []string{"foo.txt", "Foo.TXT", "hello world.html", "日本語.txt", "emoji 😀.txt", ".bashrc", "a+b=c;d [1].txt",
		"two..dots", "trailing. . ", strings.Repeat("x", 255), "a\x01b", "LONGFI~1.TXT"} {
		write("FuzzShortName", fmt.Sprintf("seed%02d", i), s)
	}
}
