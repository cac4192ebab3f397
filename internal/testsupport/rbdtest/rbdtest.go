// Package rbdtest gives tests a Ceph cluster to keep RBD images in: the one
// whose ceph.conf VDISK_CEPH_CONF names (its pool "rbd", client.admin), or
// else a throwaway single-node cluster that the repository's
// scripts/ceph-micro.sh starts in a temporary directory on first use. A
// package whose tests use it runs them through Main, which stops that
// cluster by its pid files when they end (and the script's watchdog stops
// it if the test process dies first).
//
// It is pure Go (it runs Ceph's programs, not librbd), so it builds without
// the rbd tag; it is test support beside package testsupport and, like it,
// imports nothing of vdisk but testsupport, so any package's tests may use
// it.
package rbdtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// Pool is the pool the test images live in.
const Pool = "rbd"

// cluster is the cluster of this test process.
var cluster struct {
	once    sync.Once
	conf    string
	script  string // ceph-micro.sh
	dir     string // the cluster's directory; "" for one given by VDISK_CEPH_CONF
	err     error
	started time.Duration
}

// Main runs the tests and then stops the cluster if they started one; it
// does not return. Use it as a package's TestMain:
//
//	func TestMain(m *testing.M) { rbdtest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the tests, then stops the cluster if they started one, and
// returns their exit status: for a TestMain that hands m to another runner
// (testscript.Main takes anything with a Run method), as
//
//	testscript.Main(rbdtest.M{M: m}, commands)
func Run(m interface{ Run() int }) int {
	code := m.Run()
	if cluster.dir != "" {
		out, err := exec.Command(cluster.script, "stop", cluster.dir).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "rbdtest: stopping the test cluster: %v\n%s", err, out)
			code = 1
		}
		os.RemoveAll(filepath.Dir(cluster.dir))
	}
	return code
}

// M runs M's tests through Run, stopping the cluster they started.
type M struct{ M interface{ Run() int } }

func (m M) Run() int { return Run(m.M) }

// Conf is the ceph.conf of the test cluster, which it starts if need be.
// Without one (no Ceph installed, no VDISK_CEPH_CONF) the test fails
// saying why.
func Conf(t testing.TB) string {
	t.Helper()
	cluster.once.Do(start)
	if cluster.err != nil {
		t.Fatal(cluster.err)
	}
	return cluster.conf
}

// StartTime is how long starting the throwaway cluster took (0 if none
// was started).
func StartTime() time.Duration { return cluster.started }

func start() {
	if c := os.Getenv("VDISK_CEPH_CONF"); c != "" {
		cluster.conf = c
		return
	}
	for _, tool := range []string{"ceph-mon", "ceph-osd", "ceph-mgr", "ceph", "rbd", "rados", "monmaptool"} {
		if _, err := exec.LookPath(tool); err != nil {
			cluster.err = fmt.Errorf("the RBD tests need a Ceph cluster: %s is not installed "+
				"(apt-get install ceph-mon ceph-osd ceph-mgr ceph-common, as scripts/test.sh does), "+
				"nor does VDISK_CEPH_CONF name a running cluster's ceph.conf", tool)
			return
		}
	}
	script, err := findScript()
	if err != nil {
		cluster.err = err
		return
	}
	cluster.script = script
	dir, err := os.MkdirTemp("", "vdisk-ceph-")
	if err != nil {
		cluster.err = err
		return
	}
	cluster.dir = filepath.Join(dir, "cluster")
	began := time.Now()
	var stderr bytes.Buffer
	cmd := exec.Command(script, "start", cluster.dir, strconv.Itoa(os.Getpid()))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	cluster.started = time.Since(began)
	if err != nil {
		cluster.err = fmt.Errorf("starting a test cluster with %s: %v\n%s", script, err, stderr.Bytes())
		return
	}
	cluster.conf = strings.TrimSpace(string(out))
	fmt.Fprintf(os.Stderr, "rbdtest: test cluster up in %.1fs\n", cluster.started.Seconds())
}

// findScript finds scripts/ceph-micro.sh in the module that holds the
// directory the tests run in (their package's).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			script := filepath.Join(dir, "scripts", "ceph-micro.sh")
			if _, err := os.Stat(script); err != nil {
				return "", fmt.Errorf("the RBD tests start their cluster with %s: %w", script, err)
			}
			return script, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the RBD tests start their cluster with scripts/ceph-micro.sh, but no go.mod is above the test's directory")
		}
		dir = parent
	}
}

// Image is a fresh image name in Pool (no image of that name exists), so
// tests, and runs against a reused cluster, never meet each other's images.
func Image(t testing.TB) string {
	var b [4]byte
	rand.Read(b[:])
	return strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + hex.EncodeToString(b[:])
}

// Tool runs a program (rbd, ceph, qemu-img, …) with CEPH_CONF set to the
// test cluster's and returns its standard output, failing the test with
// its standard error if it fails.
func Tool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	return []byte(testsupport.Cmd{Env: []string{"CEPH_CONF=" + Conf(t)}, Timeout: 5 * time.Minute}.Must(t, name, args...))
}

// DiffExtent is one extent of `rbd diff`.
type DiffExtent struct {
	Offset, Length int64
	Data           bool // "exists": the extent holds data
}

// Diff is `rbd diff` of an image or snapshot (POOL/IMAGE[@SNAP]), with
// --whole-object if whole: per object, as the object map with fast-diff
// answers.
func Diff(t testing.TB, name string, whole bool) []DiffExtent {
	t.Helper()
	args := []string{"diff", "--format", "json", name}
	if whole {
		args = append(args, "--whole-object")
	}
	var diff []struct {
		Offset int64  `json:"offset"`
		Length int64  `json:"length"`
		Exists string `json:"exists"`
	}
	out := Tool(t, "rbd", args...)
	if err := json.Unmarshal(out, &diff); err != nil {
		t.Fatalf("rbd diff: %v\n%s", err, out)
	}
	ext := make([]DiffExtent, len(diff))
	for i, d := range diff {
		ext[i] = DiffExtent{Offset: d.Offset, Length: d.Length, Data: d.Exists == "true"}
	}
	return ext
}
