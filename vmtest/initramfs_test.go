package vmtest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// guestModules are the kernel modules the guest loads: the NBD client, the
// FAT file systems with the code pages vfat opens by default (codepage 437;
// iocharset ascii, without which mount fails with EINVAL) and for -o utf8,
// and the network card QEMU emulates.
var guestModules = []string{"e1000", "nbd", "vfat", "nls_cp437", "nls_ascii", "nls_utf8"}

// host is what the test found on the host.
type host struct {
	qemu, busybox, nbdClient, ldd, fsckFat string
	vmlinuz                                string // the kernel image
	modules                                string // its lib/modules/VERSION directory
}

// cacheDir is where scripts/test.sh leaves the unpacked kernel package.
func cacheDir() string {
	if d := os.Getenv("VDISK_VM_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "vdisk-vm")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "vdisk-vm")
}

// lookPath finds a command in PATH or in the sbin directories a non-login
// PATH may lack.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// findBusybox returns a statically linked busybox: it runs in the guest
// without libraries.
func findBusybox() (string, error) {
	p, err := lookPath("busybox")
	if err != nil {
		return "", errors.New("busybox not found (Debian package busybox-static)")
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("busybox %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("busybox %s is dynamically linked: install busybox-static", p)
		}
	}
	return p, nil
}

// findHost locates every prerequisite, and lists all that are missing in
// one error saying how to get them.
func findHost() (host, error) {
	var h host
	var missing []string
	need := func(dst *string, name, pkg string) {
		p, err := lookPath(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", name, pkg))
			return
		}
		*dst = p
	}
	need(&h.qemu, "qemu-system-x86_64", "qemu-system-x86")
	need(&h.nbdClient, "nbd-client", "nbd-client")
	need(&h.ldd, "ldd", "libc-bin")
	need(&h.fsckFat, "fsck.fat", "dosfstools")
	if p, err := findBusybox(); err != nil {
		missing = append(missing, err.Error())
	} else {
		h.busybox = p
	}
	vmlinuz, modules, err := findKernel()
	if err != nil {
		missing = append(missing, err.Error())
	}
	h.vmlinuz, h.modules = vmlinuz, modules
	if len(missing) > 0 {
		return h, fmt.Errorf("the VM test needs: %s. scripts/test.sh installs them; set VDISK_VM=0 to skip the VM tests", strings.Join(missing, "; "))
	}
	return h, nil
}

// findKernel finds vmlinuz and its modules in an unpacked linux-image
// package: $VDISK_VM_KERNEL, else the newest kernel-* directory of the
// cache directory.
func findKernel() (vmlinuz, modules string, err error) {
	roots := []string{os.Getenv("VDISK_VM_KERNEL")}
	if roots[0] == "" {
		roots, _ = filepath.Glob(filepath.Join(cacheDir(), "kernel-*"))
		sort.Sort(sort.Reverse(sort.StringSlice(roots)))
	}
	for _, root := range roots {
		images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
		if len(images) != 1 {
			continue
		}
		version := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
		// Debian moved modules under /usr with trixie.
		for _, dir := range []string{"lib", "usr/lib"} {
			mods := filepath.Join(root, dir, "modules", version)
			if st, err := os.Stat(mods); err == nil && st.IsDir() {
				return images[0], mods, nil
			}
		}
	}
	return "", "", fmt.Errorf("an unpacked Debian kernel (apt-get download linux-image-<version>-amd64; dpkg -x it into %s/kernel-<version>, or set VDISK_VM_KERNEL)", cacheDir())
}

// moduleName is a module's name as the kernel writes it in depends=.
func moduleName(file string) string {
	base := filepath.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// readModule returns a module's ELF object, decompressed if the package
// ships it compressed (.ko.xz, .ko.zst, .ko.gz).
func readModule(path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".ko.xz"):
		return exec.Command("xz", "-dc", path).Output()
	case strings.HasSuffix(path, ".ko.zst"):
		return exec.Command("zstd", "-dc", path).Output()
	}
	return nil, fmt.Errorf("%s: not a kernel module", path)
}

// modDepends reads the depends= field of a module's .modinfo section.
func modDepends(object []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(object))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// kernelModule is one module to load, uncompressed.
type kernelModule struct {
	name   string
	object []byte
}

// resolveModules returns the named modules and their dependencies, each
// after what it depends on (the order insmod needs).
func resolveModules(modules string, names []string) ([]kernelModule, error) {
	files := map[string]string{}
	err := filepath.WalkDir(filepath.Join(modules, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".ko") {
			files[moduleName(p)] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []kernelModule
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module %s depends on itself", name)
		case 2:
			return nil
		}
		state[name] = 1
		p, ok := files[name]
		if !ok {
			return fmt.Errorf("module %s is not in %s (built into the kernel, or the wrong package?)", name, modules)
		}
		obj, err := readModule(p)
		if err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
		deps, err := modDepends(obj)
		if err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, kernelModule{name, obj})
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var lddLine = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x`)

// sharedLibs lists the libraries (and the dynamic loader) ldd says bin
// needs, by the paths the loader will look them up at.
func sharedLibs(ldd, bin string) ([]string, error) {
	out, err := exec.Command(ldd, bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd %s: %s", bin, strings.TrimSpace(line))
		}
		if m := lddLine.FindStringSubmatch(line); m != nil {
			libs = append(libs, m[1])
		}
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s listed no libraries:\n%s", bin, out)
	}
	return libs, nil
}

// buildInitramfs writes the guest's initramfs: busybox, nbd-client and its
// libraries, the modules, the static vdisk, /init and the files in extra
// (path → contents).
func buildInitramfs(out string, h host, vdiskBin string, initScript []byte, extra map[string][]byte) ([]kernelModule, error) {
	mods, err := resolveModules(h.modules, guestModules)
	if err != nil {
		return nil, err
	}
	libs, err := sharedLibs(h.ldd, h.nbdClient)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := newNewc(f)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "mnt", "modules"} {
		c.mkdirAll(d)
	}
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	c.charDev("dev/console", 5, 1)
	c.hostFile("bin/busybox", h.busybox, 0o755)
	// /init's interpreter; the other applets are linked by busybox --install.
	c.hostFile("bin/sh", h.busybox, 0o755)
	c.hostFile("sbin/nbd-client", h.nbdClient, 0o755)
	for _, l := range libs {
		c.hostFile(l, l, 0o755)
	}
	c.hostFile("bin/vdisk", vdiskBin, 0o755)
	for _, m := range mods {
		c.file("modules/"+m.name+".ko", 0o644, m.object)
	}
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.file(n, 0o644, extra[n])
	}
	c.file("init", 0o755, initScript)
	if err := c.close(); err != nil {
		return nil, err
	}
	return mods, f.Close()
}
