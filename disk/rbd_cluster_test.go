//go:build rbd

package disk

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/internal/testsupport/rbdtest"
)

// The RBD tests run against the cluster of package rbdtest, which TestMain
// stops at the end if it started one.

func TestMain(m *testing.M) {
	if cmd := os.Getenv(rbdHelperEnv); cmd != "" {
		os.Exit(rbdHelper(cmd))
	}
	rbdtest.Main(m)
}

// testRBDOptions are the options that reach the test cluster.
func testRBDOptions(t testing.TB) RBDOptions {
	return RBDOptions{ConfFile: rbdtest.Conf(t)}
}

// uniqueImage is a fresh image in the test pool.
func uniqueImage(t testing.TB) RBDSpec {
	return RBDSpec{Pool: rbdtest.Pool, Image: rbdtest.Image(t)}
}

// newTestRBD creates an image of size bytes and opens it writable.
func newTestRBD(t testing.TB, size int64) *RBDStore {
	t.Helper()
	opts := testRBDOptions(t)
	spec := uniqueImage(t)
	if err := CreateRBD(spec, size, opts); err != nil {
		t.Fatal(err)
	}
	s, err := OpenRBD(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rbdHelperEnv makes the test binary a lock holder for the lock tests: a
// separate process, so that it can be killed with SIGKILL like a crashed
// server.
const rbdHelperEnv = "VDISK_RBD_HELPER"

// rbdHelper opens the image writable (taking its lock), says
// "holding CLIENT" and then obeys lines on standard input: "write OFF
// BYTE" writes 4 KiB of BYTE at OFF and flushes, answering "ok" or
// "error: …"; "close" closes the store, answering "closed". It ends when
// killed or at the end of its input, without closing the store.
func rbdHelper(arg string) int {
	conf, specStr, _ := strings.Cut(arg, "|")
	spec, err := ParseRBD(specStr)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	s, err := OpenRBD(spec, RBDOptions{ConfFile: conf})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("holding", s.Client())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "close" {
			if err := s.Close(); err != nil {
				fmt.Println("error:", err)
			} else {
				fmt.Println("closed")
			}
			continue
		}
		var off int64
		var b byte
		if _, err := fmt.Sscanf(in.Text(), "write %d %d", &off, &b); err != nil {
			fmt.Println("error:", err)
			continue
		}
		_, err := s.WriteAt(bytes.Repeat([]byte{b}, 4096), off)
		if err == nil {
			err = s.Sync()
		}
		if err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Println("ok")
		}
	}
	return 0
}
