//go:build rbd

package disk

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The RBD tests run against a Ceph cluster: the one whose ceph.conf
// VDISK_CEPH_CONF names (its pool "rbd", client.admin), or else a throwaway
// single-node cluster that scripts/ceph-micro.sh starts in a temporary
// directory on first use and TestMain stops by its pid files at the end.
// (A watchdog in the script also stops it if this process dies first.)

// rbdCluster is the cluster of this test process.
var rbdCluster struct {
	once    sync.Once
	conf    string
	dir     string // the cluster's directory; "" for one given by VDISK_CEPH_CONF
	err     error
	started time.Duration
}

const rbdPool = "rbd"

// ceph-micro.sh relative to this package's directory, where go test runs.
var cephMicro = filepath.Join("..", "scripts", "ceph-micro.sh")

func TestMain(m *testing.M) {
	if cmd := os.Getenv(rbdHelperEnv); cmd != "" {
		os.Exit(rbdHelper(cmd))
	}
	code := m.Run()
	if rbdCluster.dir != "" {
		out, err := exec.Command(cephMicro, "stop", rbdCluster.dir).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "stopping the test cluster: %v\n%s", err, out)
			code = 1
		}
		os.RemoveAll(filepath.Dir(rbdCluster.dir))
	}
	os.Exit(code)
}

// testCephConf is the ceph.conf of the test cluster, which it starts if
// need be; the test fails saying why if there is none.
func testCephConf(t testing.TB) string {
	t.Helper()
	rbdCluster.once.Do(func() {
		if c := os.Getenv("VDISK_CEPH_CONF"); c != "" {
			rbdCluster.conf = c
			return
		}
		for _, tool := range []string{"ceph-mon", "ceph-osd", "ceph-mgr", "ceph", "rbd", "rados", "monmaptool"} {
			if _, err := exec.LookPath(tool); err != nil {
				rbdCluster.err = fmt.Errorf("the RBD tests need a Ceph cluster: %s is not installed "+
					"(apt-get install ceph-mon ceph-osd ceph-mgr ceph-common, as scripts/test.sh does), "+
					"nor does VDISK_CEPH_CONF name a running cluster's ceph.conf", tool)
				return
			}
		}
		dir, err := os.MkdirTemp("", "vdisk-ceph-")
		if err != nil {
			rbdCluster.err = err
			return
		}
		rbdCluster.dir = filepath.Join(dir, "cluster")
		start := time.Now()
		var stderr bytes.Buffer
		cmd := exec.Command(cephMicro, "start", rbdCluster.dir, strconv.Itoa(os.Getpid()))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		rbdCluster.started = time.Since(start)
		if err != nil {
			rbdCluster.err = fmt.Errorf("starting a test cluster with %s: %v\n%s", cephMicro, err, stderr.Bytes())
			return
		}
		rbdCluster.conf = strings.TrimSpace(string(out))
		fmt.Fprintf(os.Stderr, "ceph-micro: test cluster up in %.1fs\n", rbdCluster.started.Seconds())
	})
	if rbdCluster.err != nil {
		t.Fatal(rbdCluster.err)
	}
	return rbdCluster.conf
}

// testRBDOptions are the options that reach the test cluster.
func testRBDOptions(t testing.TB) RBDOptions {
	return RBDOptions{ConfFile: testCephConf(t)}
}

// uniqueImage is a fresh image name in the test pool, so tests (and runs
// against a reused cluster) never meet each other's images.
func uniqueImage(t testing.TB) RBDSpec {
	var b [4]byte
	rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + hex.EncodeToString(b[:])
	return RBDSpec{Pool: rbdPool, Image: name}
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

// cephTool runs a Ceph command-line tool (rbd, ceph, qemu-img) against the
// test cluster and returns its standard output.
func cephTool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "CEPH_CONF="+testCephConf(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
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
