package export_test

import (
	"errors"
	"testing"

	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/volume"
)

// Writable exports and in-process mounts of one volume exclude each other
// (export.ClaimAtOnce).

// TestE2EExportMountExclusivity: writable exports claim every volume (a mount
// fails with ErrExportedWritable until release); a mounted volume makes
// Exports(false) fail with ErrMounted and claim nothing.
func TestE2EExportMountExclusivity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gpt, mbr := testworld.GPT(t, dir), testworld.MBR(t, dir)
	sys, imgs := testworld.System(t, 0, false, gpt, mbr)
	var vols []*volume.Extension
	for _, img := range imgs {
		for _, v := range img.Volumes {
			vols = append(vols, v.Extension.(*volume.Extension))
		}
	}
	if len(vols) != 8 {
		t.Fatalf("%d volumes, want 8", len(vols))
	}
	mountAll := func(want error) {
		t.Helper()
		for i, v := range vols {
			err := v.AcquireMount()
			if !errors.Is(err, want) || (want == nil) != (err == nil) {
				t.Fatalf("volume %d: AcquireMount = %v, want %v", i, err, want)
			}
			if err == nil {
				v.ReleaseMount()
			}
		}
	}

	_, release, err := sys.Exports(false, export.ClaimAtOnce)
	if err != nil {
		t.Fatal(err)
	}
	mountAll(volume.ErrExportedWritable)
	release()
	mountAll(nil)

	// Read-only exports claim nothing.
	_, releaseRO, err := sys.Exports(true, export.ClaimAtOnce)
	if err != nil {
		t.Fatal(err)
	}
	mountAll(nil)
	releaseRO()

	// A mounted volume (the MBR image's last) refuses writable exports, and
	// the failed Exports leaves no claim behind on any other volume.
	for _, held := range []int{0, len(vols) - 1, 4} {
		if err := vols[held].AcquireMount(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sys.Exports(false, export.ClaimAtOnce); !errors.Is(err, volume.ErrMounted) {
			t.Fatalf("Exports(false) with volume %d mounted: %v, want ErrMounted", held, err)
		}
		for i, v := range vols {
			if i == held {
				continue
			}
			if err := v.AcquireMount(); err != nil {
				t.Fatalf("after the failed Exports, volume %d: %v (a claim was left behind)", i, err)
			}
			v.ReleaseMount()
		}
		// Read-only exports are fine while mounted.
		if _, rel, err := sys.Exports(true, export.ClaimAtOnce); err != nil {
			t.Fatalf("Exports(true) while mounted: %v", err)
		} else {
			rel()
		}
		vols[held].ReleaseMount()
		exports, release, err := sys.Exports(false, export.ClaimAtOnce)
		if err != nil {
			t.Fatalf("Exports(false) after the dismount: %v", err)
		}
		if len(exports) != 2+1+3+5 {
			t.Fatalf("%d exports", len(exports))
		}
		mountAll(volume.ErrExportedWritable)
		release()
		release() // a second release gives nothing back twice
		mountAll(nil)
	}
}
