package testworld

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vdisk-dev/vdisk/create"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/partition"
)

// GPT creates gpt.img: 64 MiB, an ESP of 16 MiB, a Linux partition of
// 16 MiB and a raw partition with the rest.
func GPT(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "gpt.img")
	_, err := create.Image(path, create.Options{Size: 64 * testsupport.MiB, Table: partition.GPT, NoFormat: true, Parts: []partition.Spec{
		{Size: 16 * testsupport.MiB, Type: "esp", Label: "EFI"}, {Size: 16 * testsupport.MiB, Type: "linux", Label: "data"}, {Size: partition.Rest, Type: "raw", Label: "rest"}}})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// MBR creates mbr.img: 48 MiB, three primaries of 6 MiB and, in an
// extended partition, two logicals (6 MiB and the rest).
func MBR(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "mbr.img")
	_, err := create.Image(path, create.Options{Size: 48 * testsupport.MiB, Table: partition.MBR, NoFormat: true, Parts: []partition.Spec{
		{Size: 6 * testsupport.MiB, Type: "linux"}, {Size: 6 * testsupport.MiB, Type: "raw"}, {Size: 6 * testsupport.MiB, Type: "fat32"},
		{Size: 6 * testsupport.MiB, Type: "linux"}, {Size: partition.Rest, Type: "linux"}}})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// FATImage makes a GPT image whose first partition is formatted by
// mkfs.fat (FAT type fatType) through an offset, and returns its path.
func FATImage(t testing.TB, dir string, fatType string, size int64) string {
	t.Helper()
	testsupport.NeedTool(t, "mkfs.fat")
	path := filepath.Join(dir, "fat"+fatType+".img")
	tbl, err := create.Image(path, create.Options{Size: size, Table: partition.GPT, NoFormat: true,
		Parts: []partition.Spec{{Size: partition.Rest, Type: "fat" + fatType, Label: "DATA"}}})
	if err != nil {
		t.Fatal(err)
	}
	p := tbl.Partitions[0]
	testsupport.Must(t, "mkfs.fat", "-F", fatType, "--offset", strconv.FormatInt(p.Start/512, 10), "-n", "VDISK", path, strconv.FormatInt(p.Size/1024, 10))
	return path
}

// ControlImage creates ctl.img: 40 MiB GPT, two FAT16 partitions.
func ControlImage(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ctl.img")
	_, err := create.Image(path, create.Options{Size: 40 * testsupport.MiB, Table: partition.GPT, Parts: []partition.Spec{
		{Size: 16 * testsupport.MiB, Type: "fat16", Label: "ONE"}, {Size: partition.Rest, Type: "fat16", Label: "TWO"}}})
	if err != nil {
		t.Fatal(err)
	}
	return path
}
