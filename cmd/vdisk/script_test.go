package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/internal/testsupport/rbdtest"
)

// TestMain lets the scripts run `vdisk` as a command: testscript puts this
// test binary on the scripts' PATH under that name and, when it runs under
// it, calls the function below instead of the tests. The RBD tests' Ceph
// cluster, if they started one, stops when the tests end (rbdtest.M).
func TestMain(m *testing.M) {
	testscript.Main(rbdtest.M{M: m}, map[string]func(){
		"vdisk": func() { os.Exit(run(os.Args)) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script: each runs
// one command the way a user does, checks its output, its error messages
// and its exit status (0 success, 1 failure, 2 usage, as docs/CLI.md says),
// and where it wrote an image, asks outside tools about it: fsck.fat -n
// (dosfstools), mdir/minfo (mtools) and sfdisk (util-linux). Lines that
// need one of them are guarded with [exec:TOOL]; scripts/test.sh installs
// all three.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// fsck.fat and sfdisk live in sbin, which a user's PATH
			// may lack.
			env.Setenv("PATH", env.Getenv("PATH")+":/usr/sbin:/sbin")
			// mtools refuses images whose geometry it dislikes;
			// vdisk's follow mkfs.fat, which mtools also refuses.
			env.Setenv("MTOOLS_SKIP_CHECK", "1")
			env.Setenv("LC_ALL", "C.UTF-8")
			// Under -race every vdisk the scripts run would sleep a
			// second at exit, by default, for late race reports:
			// with some two hundred runs that is most of the suite.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=10"))
			return nil
		},
		// [rbd]: this vdisk has RBD support compiled in.
		Condition: func(cond string) (bool, error) {
			if cond == "rbd" {
				return disk.RBDCompiled(), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":    cmdExits,
			"part":     cmdPart,
			"mkfile":   cmdMkfile,
			"jsonhas":  cmdJSONHas,
			"filesize": cmdFilesize,
			"poke":     cmdPoke,
			"maxalloc": cmdMaxAlloc,
			"nbdraw":   cmdNbdRaw,
		},
	})
}

// cmdExits runs a command and checks its exact exit status, which
// testscript's `! cmd` cannot tell apart (usage errors exit 2, failures 1):
//
//	exits 2 vdisk create
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits STATUS command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: status %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// cmdPart copies partition N of an image into a file of its own, finding
// it with sfdisk (not vdisk), so that fsck.fat and mtools can check it:
//
//	part disk.img 1 p1.img
func cmdPart(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: part IMAGE N OUT")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		ts.Fatalf("part: %q is not a partition number", args[1])
	}
	img := ts.MkAbs(args[0])
	out, err := exec.Command(lookPath(ts, "sfdisk"), "--json", img).Output()
	ts.Check(err)
	var dump struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64 `json:"start"`
				Size  int64 `json:"size"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	ts.Check(json.Unmarshal(out, &dump))
	pt := dump.PartitionTable
	if n > len(pt.Partitions) {
		ts.Fatalf("part: sfdisk sees %d partitions in %s", len(pt.Partitions), args[0])
	}
	if pt.SectorSize == 0 {
		pt.SectorSize = 512
	}
	p := pt.Partitions[n-1]
	src, err := os.Open(img)
	ts.Check(err)
	defer src.Close()
	dst, err := os.Create(ts.MkAbs(args[2]))
	ts.Check(err)
	_, err = io.Copy(dst, io.NewSectionReader(src, p.Start*pt.SectorSize, p.Size*pt.SectorSize))
	ts.Check(err)
	ts.Check(dst.Close())
}

// cmdMkfile writes a file of SIZE bytes (go-humanize forms) of a
// repeating, position-dependent pattern, so that a copy that loses or
// moves a block does not compare equal:
//
//	mkfile 3MiB big.bin
func cmdMkfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkfile SIZE FILE")
	}
	size, err := humanize.ParseBytes(args[0])
	ts.Check(err)
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + i>>10)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o644))
}

// cmdJSONHas checks that the last command's standard output is JSON and
// that a path of keys and array indexes in it holds a value (compared as
// JSON text):
//
//	jsonhas partitions.0.file_system.type '"FAT16"'
func cmdJSONHas(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: jsonhas PATH VALUE")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &v))
	for _, k := range strings.Split(args[0], ".") {
		switch node := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = node[k]; !ok {
				if neg {
					return
				}
				ts.Fatalf("jsonhas: no key %q in %s", k, args[0])
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(node) {
				ts.Fatalf("jsonhas: no element %q in %s (array of %d)", k, args[0], len(node))
			}
			v = node[i]
		default:
			ts.Fatalf("jsonhas: %s: %q is inside a %T", args[0], k, v)
		}
	}
	got, err := json.Marshal(v)
	ts.Check(err)
	if (string(got) == args[1]) == neg {
		ts.Fatalf("jsonhas: %s is %s, want %s%s", args[0], got, map[bool]string{true: "not "}[neg], args[1])
	}
}

// cmdFilesize checks a file's size in bytes.
func cmdFilesize(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filesize FILE BYTES")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if (fmt.Sprint(fi.Size()) == args[1]) == neg {
		ts.Fatalf("%s is %d bytes, want %s%s", args[0], fi.Size(), map[bool]string{true: "not "}[neg], args[1])
	}
}

// lookPath finds a program on the script's PATH, which Setup extended
// with the sbin directories, rather than on the test process's.
func lookPath(ts *testscript.TestScript, prog string) string {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return prog
}

// cmdPoke overwrites bytes of a file at an offset, to damage an image on
// purpose:
//
//	poke disk.img 512 f0ffff034000
func cmdPoke(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: poke FILE OFFSET HEX")
	}
	off, err := strconv.ParseInt(args[1], 0, 64)
	ts.Check(err)
	b, err := hex.DecodeString(args[2])
	ts.Check(err)
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY, 0)
	ts.Check(err)
	_, err = f.WriteAt(b, off)
	ts.Check(err)
	ts.Check(f.Close())
}

// cmdMaxAlloc checks that a file takes at most SIZE of storage (its
// allocated blocks, as du counts them), whatever its length: a sparse copy
// writes no zeros.
//
//	maxalloc disk.img 2MiB
func cmdMaxAlloc(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: maxalloc FILE SIZE")
	}
	limit, err := humanize.ParseBytes(args[1])
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		ts.Fatalf("maxalloc: no block count for %s on this system", args[0])
	}
	if used := uint64(st.Blocks) * 512; used > limit {
		ts.Fatalf("%s takes %s of storage, want at most %s", args[0], humanize.IBytes(used), humanize.IBytes(limit))
	}
}

// cmdNbdRaw plays a client that sends raw bytes: it connects to an NBD
// server's unix socket, reads the greeting, sends the bytes and reads until
// the server closes (within 10 s), to provoke what no real client sends:
//
//	nbdraw nbd.sock 00000003...
func cmdNbdRaw(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: nbdraw SOCKET HEX")
	}
	b, err := hex.DecodeString(args[1])
	ts.Check(err)
	c, err := net.Dial("unix", ts.MkAbs(args[0]))
	ts.Check(err)
	defer c.Close()
	ts.Check(c.SetDeadline(time.Now().Add(10 * time.Second)))
	greeting := make([]byte, 18)
	_, err = io.ReadFull(c, greeting)
	ts.Check(err)
	_, err = c.Write(b)
	ts.Check(err)
	if _, err := io.Copy(io.Discard, c); err != nil {
		ts.Fatalf("nbdraw: the server did not close the connection: %v", err)
	}
}
