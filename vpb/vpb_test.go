package vpb_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/vdisk-dev/vdisk/vpb"
)

type dev struct{ name string }

func TestMountSetsDeviceAndFlags(t *testing.T) {
	real, fs := &dev{"vol"}, &dev{"fat"}
	v := vpb.New(real)
	if v.Mounted() || v.RealDevice() != real {
		t.Fatal("new VPB")
	}
	if _, ok := v.Device(); ok {
		t.Fatal("unmounted VPB has a device")
	}
	if err := v.Reference(nil); !errors.Is(err, vpb.ErrNotMounted) {
		t.Fatalf("reference on unmounted volume: %v", err)
	}
	if err := v.Mount(fs, 0x1234ABCD, "EFI", false); err != nil {
		t.Fatal(err)
	}
	if d, ok := v.Device(); !ok || d != fs || !v.Mounted() || v.SerialNumber() != 0x1234ABCD || v.Label() != "EFI" {
		t.Fatalf("after mount: %+v", v.Snapshot())
	}
	if err := v.Mount(fs, 0, "", false); !errors.Is(err, vpb.ErrMounted) {
		t.Fatalf("second mount: %v", err)
	}
	if got := v.Flags().String(); got != "VPB_MOUNTED" {
		t.Fatalf("flags %s", got)
	}
}

func TestLockNeedsSoleHandleAndBlocksOthers(t *testing.T) {
	v := vpb.New(&dev{"vol"})
	v.Mount(&dev{"fat"}, 1, "", false)
	a, b := "handle-a", "handle-b"
	v.Reference(a)
	v.Reference(b)
	if err := v.Lock(a, 1); !errors.Is(err, vpb.ErrInUse) {
		t.Fatalf("lock with another handle open: %v", err)
	}
	v.Dereference()
	if err := v.Lock(a, 1); err != nil {
		t.Fatal(err)
	}
	if err := v.Reference(b); !errors.Is(err, vpb.ErrLocked) {
		t.Fatalf("open while locked by another: %v", err)
	}
	if err := v.Reference(a); err != nil {
		t.Fatalf("lock owner reopening: %v", err)
	}
	if err := v.Unlock(b); !errors.Is(err, vpb.ErrNotLockOwner) {
		t.Fatalf("unlock by non-owner: %v", err)
	}
	if err := v.Unlock(a); err != nil {
		t.Fatal(err)
	}
	if err := v.Unlock(a); !errors.Is(err, vpb.ErrNotLocked) {
		t.Fatalf("double unlock: %v", err)
	}
}

func TestDismountRefusedWithHandlesUnlessForced(t *testing.T) {
	fs := &dev{"fat"}
	v := vpb.New(&dev{"vol"})
	v.Mount(fs, 1, "", false)
	v.Reference(nil)
	if err := v.BeginDismount(nil, 0, false); !errors.Is(err, vpb.ErrInUse) {
		t.Fatalf("dismount with a handle open: %v", err)
	}
	if err := v.BeginDismount(nil, 0, true); err != nil {
		t.Fatal(err)
	}
	if v.Flags()&vpb.RemovePending == 0 {
		t.Fatal("remove pending not set")
	}
	if err := v.Reference(nil); !errors.Is(err, vpb.ErrRemoving) {
		t.Fatalf("open during dismount: %v", err)
	}
	// Old handles still route to the file system until Dismount.
	if d, ok := v.Device(); !ok || d != fs {
		t.Fatal("device lost before Dismount")
	}
	got, err := v.Dismount()
	if err != nil || got != fs || v.Mounted() {
		t.Fatalf("dismount: %v %v", got, err)
	}
	if v.ReferenceCount() != 1 {
		t.Fatal("dismount must not forget references")
	}
	v.Dereference()
	if _, err := v.Dismount(); !errors.Is(err, vpb.ErrNotMounted) {
		t.Fatalf("second dismount: %v", err)
	}
	// A new mount after dismount works.
	if err := v.Mount(fs, 2, "", true); err != nil || v.Flags()&vpb.RawMount == 0 {
		t.Fatalf("remount raw: %v %v", err, v.Flags())
	}
}

func TestConcurrentReferences(t *testing.T) {
	v := vpb.New(&dev{"vol"})
	v.Mount(&dev{"fat"}, 1, "", false)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				if err := v.Reference(nil); err != nil {
					t.Error(err)
					return
				}
				v.Dereference()
			}
		}()
	}
	wg.Wait()
	if v.ReferenceCount() != 0 {
		t.Fatalf("count %d", v.ReferenceCount())
	}
}
