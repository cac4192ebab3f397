//go:build linux

package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestAttachRefusesClearly checks the errors attach and detach give before
// touching a device: whichever of them applies on this machine (not root,
// no nbd module, no such device) must be said in words.
func TestAttachRefusesClearly(t *testing.T) {
	target := nbdTarget{Addr: "127.0.0.1:1", Export: "disk@1"}
	var ue usageError
	if err := attach(target, "/dev/sda", 512, 0); !errors.As(err, &ue) || !strings.Contains(err.Error(), "not an NBD device") {
		t.Errorf("attach to /dev/sda: %v, want a usage error naming it not an NBD device", err)
	}
	if err := detach("/tmp/nbd"); !errors.As(err, &ue) {
		t.Errorf("detach /tmp/nbd: %v, want a usage error", err)
	}

	var want string
	_, modErr := os.Stat("/sys/module/nbd")
	switch {
	case os.Geteuid() != 0:
		want = "needs root"
	case modErr != nil:
		want = "the nbd kernel module is not loaded (run: modprobe nbd)"
	default:
		want = "no device /dev/nbd4095"
	}
	for name, err := range map[string]error{
		"attach": attach(target, "/dev/nbd4095", 512, 0),
		"detach": detach("/dev/nbd4095"),
	} {
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), name+":") {
			t.Errorf("%s /dev/nbd4095: %v, want %q", name, err, want)
		}
	}
}
