package stackview_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
	"github.com/vdisk-dev/vdisk/stackview"
)

// TestStackShowsAttachmentsAndIsValidGraphviz: the stack lists every device
// with its driver and attachment, a mounted volume's VPB names its file
// system volume, and --dot output is accepted by Graphviz's dot.
func TestStackShowsAttachmentsAndIsValidGraphviz(t *testing.T) {
	dir := t.TempDir()
	gpt := testworld.GPT(t, dir)
	sys := testworld.FilterSystem(t, vdisk.Options{}, gpt, "trace", "writeprotect:on=gpt@1", "monitor")
	v, err := testworld.VolumeNamed(sys, "gpt@2", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Stat("."); err != nil { // mounts (RAW claims the unformatted volume)
		t.Logf("stat on the raw volume: %v", err)
	}
	info := sys.Stack()
	byName := map[string]stackview.DeviceInfo{}
	for _, d := range info.Devices {
		byName[d.Name] = d
	}
	var trace, wp, frame int
	for _, d := range info.Devices {
		switch {
		case strings.HasPrefix(d.Driver, `\Driver\trace`):
			trace++
			if d.AttachedTo != `\Device\Harddisk0\DR0` {
				t.Errorf("trace attached to %q", d.AttachedTo)
			}
		case strings.HasPrefix(d.Driver, `\Driver\writeprotect`):
			wp++
			if d.AttachedTo != `\Device\Harddisk0\Partition1` {
				t.Errorf("writeprotect attached to %q", d.AttachedTo)
			}
		case d.Driver == `\FileSystem\Filters\FltMgr` && d.AttachedTo != "" && byName[d.AttachedTo].Driver == `\FileSystem\RAW`:
			frame++
		}
	}
	vol := byName[`\Device\HarddiskVolume2`]
	if trace != 1 || wp != 1 || vol.VPB == nil || !vol.VPB.Mounted || byName[vol.VPB.VolumeDevice].Driver != `\FileSystem\RAW` {
		t.Fatalf("trace %d writeprotect %d volume 2 %+v", trace, wp, vol.VPB)
	}
	if frame < 1 {
		t.Fatal("the filter manager's frame is not attached above the mounted volume")
	}
	var dot bytes.Buffer
	info.WriteDot(&dot)
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("graphviz (dot) not installed: the --dot output is not validated")
	}
	cmd := exec.Command("dot", "-Tsvg")
	cmd.Stdin = &dot
	if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("<svg")) {
		t.Fatalf("dot rejects the output: %v\n%s", err, out)
	}
}

// TestStackWhileVolumesMount: describing the stack while volumes mount and
// dismount is race-free (run under -race). The filter manager creates its
// volume device before the mount IRP goes down and attaches it after, so
// the device is listed for a while before its stack size is set: until its
// driver clears DO_DEVICE_INITIALIZING, the stack shows its stack size as 0
// instead of reading it while it is written. Found by TestStress (its
// stack reader against its mount loop).
func TestStackWhileVolumesMount(t *testing.T) {
	t.Parallel()
	sys := testworld.FilterSystem(t, vdisk.Options{}, testworld.ControlImage(t, t.TempDir()), "monitor")
	v, err := testworld.VolumeNamed(sys, "ctl@1", "test")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 50; i++ {
			_, err := v.Stat(".") // mounts
			if err == nil {
				err = v.Dismount(false)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		for _, d := range sys.Stack().Devices {
			if d.StackSize == 0 && !strings.Contains(d.Flags, "INITIALIZING") {
				t.Fatalf("device %s is ready with stack size 0 (flags %s)", d.Name, d.Flags)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
	}
}
