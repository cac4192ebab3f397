//go:build !rbd

package disk

import (
	"errors"
	"strings"
	"testing"
)

// A build without the rbd tag links no librbd and says how to get RBD.
func TestRBDNotCompiled(t *testing.T) {
	spec, err := ParseRBD("rbd:rbd/disk@snap")
	if err != nil {
		t.Fatal(err)
	}
	errs := []error{
		func() error { _, err := OpenRBD(spec, RBDOptions{}); return err }(),
		CreateRBD(spec.Head(), 1<<20, RBDOptions{}),
		RemoveRBD(spec.Head(), RBDOptions{}),
		SnapshotRBD(spec, true, RBDOptions{}),
		CloneRBD(spec, RBDSpec{Pool: "rbd", Image: "clone"}, RBDOptions{}),
		func() error { _, err := BreakRBDLock(spec, RBDOptions{}); return err }(),
	}
	for i, err := range errs {
		if !errors.Is(err, ErrRBDNotCompiled) || !errors.Is(err, errors.ErrUnsupported) ||
			!strings.Contains(err.Error(), "-tags rbd,pacific") || !strings.Contains(err.Error(), "rbd:rbd/") {
			t.Errorf("operation %d: %v; want ErrRBDNotCompiled naming the image and the build tags", i, err)
		}
	}
}
