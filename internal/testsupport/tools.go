package testsupport

import (
	"os/exec"
	"testing"
)

// toolPackages names the Debian package of each outside tool the tests
// use; scripts/test.sh installs them all.
var toolPackages = map[string]string{
	"fsck.fat": "dosfstools", "mkfs.fat": "dosfstools", "fatlabel": "dosfstools",
	"mdir": "mtools", "mcopy": "mtools", "mtype": "mtools", "mlabel": "mtools", "minfo": "mtools",
	"xxd":    "xxd",
	"sfdisk": "fdisk", "fdisk": "fdisk", "partx": "util-linux",
	"nbdinfo": "libnbd-bin", "nbdcopy": "libnbd-bin", "nbdsh": "libnbd-bin",
	"qemu-img": "qemu-utils", "qemu-io": "qemu-utils",
	"fio": "fio", "nbdkit": "nbdkit", "dot": "graphviz", "jq": "jq", "strace": "strace",
	"/usr/bin/python3": "python3", "python3": "python3",
	"genimage": "genimage", "hexdump": "bsdextrautils", "mkdosfs": "dosfstools",
	"mke2fs": "e2fsprogs", "e2fsck": "e2fsprogs", "diffoscope": "diffoscope", "diff": "diffutils",
}

// NeedTool returns the path of an outside tool (an oracle such as
// fsck.fat, sfdisk or nbdinfo), or skips the test, naming the tool and
// the Debian package that has it, when it is not installed.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if pkg := toolPackages[name]; pkg != "" {
			t.Skipf("%s not installed (apt-get install %s; scripts/test.sh installs it)", name, pkg)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// NeedNbdsh returns the Python interpreter that runs nbdsh (`PY -m nbd`),
// or skips the test. Debian's /usr/bin/nbdsh is a shell script running
// `python3 -m nbd`, which finds whatever python3 comes first in PATH;
// libnbd's module (python3-libnbd) belongs to /usr/bin/python3, so tests
// run `/usr/bin/python3 -m nbd`.
func NeedNbdsh(t testing.TB) string {
	t.Helper()
	NeedTool(t, "nbdsh")
	py := NeedTool(t, "/usr/bin/python3")
	if out, err := exec.Command(py, "-c", "import nbd").CombinedOutput(); err != nil {
		t.Skipf("nbdsh cannot run: /usr/bin/python3 cannot import nbd (python3-libnbd not installed): %s", out)
	}
	return py
}
