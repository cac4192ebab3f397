package create

import (
	"errors"
	"fmt"
	pathpkg "path"
	"path/filepath"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/partition"
)

// demoFiles are the files of the demo image, by partition (1 the ESP, 2
// the data partition): a boot tree, long and Unicode names, a nested
// directory.
var demoFiles = []struct {
	part       int
	path, data string
}{
	{1, "EFI/BOOT/README.TXT", "The vdisk demo's EFI system partition: no boot loader, just this file.\n"},
	{2, "hello.txt", "Hello from the vdisk demo image.\n"},
	{2, "A long file name with spaces.txt", "FAT keeps long names in VFAT entries next to an 8.3 alias.\n"},
	{2, "Ünïcödé – naïve café.txt", "Long names are UTF-16 on disk.\n"},
	{2, "docs/nested/deeper/leaf.txt", "Directories nest as deep as you like.\n"},
}

// Demo writes the built-in demo image into dir: 64 MiB, GPT, an
// EFI system partition of 16 MiB (label EFI; FAT16, asked for, as FAT32
// needs more room) and a FAT16 data partition with the rest (label DATA),
// holding a few files (demoFiles).
func Demo(dir string) (string, error) {
	path := filepath.Join(dir, "demo.img")
	if _, err := Image(path, Options{Size: 64 << 20, Table: partition.GPT, Overwrite: true, ESPFATType: 16,
		Parts: []partition.Spec{{Size: 16 << 20, Type: "esp", Label: "EFI"}, {Size: partition.Rest, Type: "fat16", Label: "DATA"}}}); err != nil {
		return "", err
	}
	sys := vdisk.New(vdisk.Options{Requestor: "vdisk demo"})
	img, err := sys.AddImage(path, false)
	if err != nil {
		sys.Close()
		return "", err
	}
	var errs []error
	for _, f := range demoFiles {
		vol, err := sys.Volume(img, f.part)
		if err == nil {
			if dir := pathpkg.Dir(f.path); dir != "." {
				err = vol.MkdirAll(dir)
			}
		}
		if err == nil {
			err = vol.WriteFile(f.path, []byte(f.data))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("demo file %s@%d:/%s: %w", img.Name, f.part, f.path, err))
			break
		}
	}
	errs = append(errs, sys.Close())
	return path, errors.Join(errs...)
}
