//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// The kernel NBD ioctls (linux/nbd.h): _IO(0xab, nr). _IO carries no
// direction bits except on the architectures whose _IOC_NONE is 1 (shifted
// to bit 29). On amd64 these are the values of go-nbd's pkg/ioctl, which
// only builds there or with cgo.
const (
	nbdSetSock       = 0
	nbdSetBlkSize    = 1
	nbdDoIt          = 3
	nbdClearSock     = 4
	nbdClearQue      = 5
	nbdSetSizeBlocks = 7
	nbdDisconnect    = 8
	nbdSetTimeout    = 9
	nbdSetFlags      = 10
)

func nbdIoctlNumber(nr uintptr) uintptr {
	switch runtime.GOARCH {
	case "mips", "mipsle", "mips64", "mips64le", "ppc64", "ppc64le":
		return 1<<29 | 0xab<<8 | nr
	}
	return 0xab<<8 | nr
}

func nbdIoctl(fd uintptr, nr, arg uintptr) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, nbdIoctlNumber(nr), arg); e != 0 {
		return e
	}
	return nil
}

var nbdDeviceName = regexp.MustCompile(`^nbd[0-9]+$`)

// nbdDevice checks that dev is an NBD device this process may drive and
// returns its kernel name (nbd0): the errors say what to do about a missing
// module, a missing device or missing privileges.
func nbdDevice(cmd, dev string) (string, error) {
	name := filepath.Base(dev)
	if resolved, err := filepath.EvalSymlinks(dev); err == nil {
		name = filepath.Base(resolved)
	}
	if !nbdDeviceName.MatchString(name) {
		return "", usagef("%s: %s is not an NBD device (want /dev/nbdN)", cmd, dev)
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%s: %s: needs root (the kernel NBD ioctls need CAP_SYS_ADMIN)", cmd, dev)
	}
	if _, err := os.Stat("/sys/module/nbd"); err != nil {
		return "", fmt.Errorf("%s: the nbd kernel module is not loaded (run: modprobe nbd)", cmd)
	}
	if _, err := os.Stat(dev); err != nil {
		n, _ := os.ReadFile("/sys/module/nbd/parameters/nbds_max")
		return "", fmt.Errorf("%s: no device %s (the nbd module has nbds_max=%s devices)", cmd, dev, strings.TrimSpace(string(n)))
	}
	return name, nil
}

// attachedPID returns the pid of the process serving an attached NBD
// device, or 0 if it is not attached.
func attachedPID(name string) int {
	b, err := os.ReadFile(filepath.Join("/sys/block", name, "pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// deviceSizeOf returns the size in bytes the kernel gives the device (0
// until it is attached and started).
func deviceSizeOf(name string) int64 {
	b, err := os.ReadFile(filepath.Join("/sys/block", name, "size"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n * 512
}

func attach(target nbdTarget, dev string, bs uint32, timeout uint) error {
	name, err := nbdDevice("attach", dev)
	if err != nil {
		return err
	}
	if pid := attachedPID(name); pid != 0 {
		return fmt.Errorf("attach: %s is already attached (by process %d): vdisk detach %s first", dev, pid, dev)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer f.Close()
	fd := f.Fd()

	conn, info, err := dialExport(target)
	if err != nil {
		return fmt.Errorf("attach: nbd://%s/%s: %w", target.Addr, target.Export, err)
	}
	if err := checkBlockSize(bs, info); err != nil {
		conn.Close()
		return fmt.Errorf("attach: export %q: %w", target.Export, err)
	}
	// The kernel takes the socket by descriptor. File returns a duplicate,
	// and its Fd puts it in blocking mode, as the kernel's socket I/O
	// expects; the Go connection is closed so that only the kernel reads.
	sock, err := conn.File()
	conn.Close()
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer sock.Close()

	steps := []struct {
		what   string
		nr     uintptr
		arg    uintptr
		skipIf bool
	}{
		{"NBD_SET_BLKSIZE", nbdSetBlkSize, uintptr(bs), false},
		{"NBD_SET_SIZE_BLOCKS", nbdSetSizeBlocks, uintptr(info.Size / uint64(bs)), false},
		{"NBD_SET_FLAGS", nbdSetFlags, uintptr(info.Flags), false},
		{"NBD_SET_TIMEOUT", nbdSetTimeout, uintptr(timeout), timeout == 0},
		{"NBD_SET_SOCK", nbdSetSock, sock.Fd(), false},
	}
	for _, s := range steps {
		if s.skipIf {
			continue
		}
		if err := nbdIoctl(fd, s.nr, s.arg); err != nil {
			nbdIoctl(fd, nbdClearSock, 0)
			if errors.Is(err, syscall.EBUSY) {
				return fmt.Errorf("attach: %s: %s: device busy (attached by another process, or mounted)", dev, s.what)
			}
			return fmt.Errorf("attach: %s: %s: %w", dev, s.what, err)
		}
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- doIt(fd) }()

	ro := ""
	if info.ReadOnly() {
		ro = ", read-only"
	}
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	announced := false
	// announce says the device is attached once the kernel shows its
	// size; it is also called before handling a signal, which may come
	// (from a script that watches sysfs) before the next tick.
	announce := func() {
		if !announced && deviceSizeOf(name) > 0 {
			announced = true
			fmt.Fprintf(os.Stderr, "vdisk: %s: attached to nbd://%s/%s (%d bytes, block size %d%s); stays in the foreground until vdisk detach %s or a signal\n",
				dev, target.Addr, target.Export, info.Size, bs, ro, dev)
		}
	}
	for {
		select {
		case err := <-done:
			// nbd-client clears the queue and socket after NBD_DO_IT so the
			// device can be attached again; failures here change nothing.
			nbdIoctl(fd, nbdClearQue, 0)
			nbdIoctl(fd, nbdClearSock, 0)
			if err != nil {
				return fmt.Errorf("attach: %s: NBD_DO_IT: %w", dev, err)
			}
			fmt.Fprintf(os.Stderr, "vdisk: %s: detached\n", dev)
			return nil
		case sig := <-sigs:
			announce()
			fmt.Fprintf(os.Stderr, "vdisk: %v: detaching %s\n", sig, dev)
			if err := nbdIoctl(fd, nbdDisconnect, 0); err != nil {
				// Nothing else ends NBD_DO_IT cleanly: shut the socket.
				nbdIoctl(fd, nbdClearSock, 0)
			}
		case <-tick.C:
			announce()
		case <-deadline:
			if !announced {
				fmt.Fprintf(os.Stderr, "vdisk: %s: warning: the kernel shows no size for the device after 10s\n", dev)
				announced = true
			}
		}
	}
}

// doIt runs NBD_DO_IT, in which the kernel serves the device until it is
// disconnected. The kernel tears the connection down abruptly if a signal
// interrupts the call, so it runs on a thread of its own with every signal
// blocked: signals go to the process's other threads, where attach turns
// SIGINT and SIGTERM into a clean NBD_DISCONNECT. The thread is never
// unlocked, so it exits with the goroutine and its mask dies with it.
func doIt(fd uintptr) error {
	runtime.LockOSThread()
	all := ^uint64(0)
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 0 /* SIG_BLOCK */, uintptr(unsafe.Pointer(&all)), 0, 8, 0, 0); e != 0 {
		return fmt.Errorf("blocking signals: %w", e)
	}
	return nbdIoctl(fd, nbdDoIt, 0)
}

func detach(dev string) error {
	name, err := nbdDevice("detach", dev)
	if err != nil {
		return err
	}
	if attachedPID(name) == 0 {
		return fmt.Errorf("detach: %s is not attached", dev)
	}
	if err := ioctlDevice(dev, nbdDisconnect); err != nil {
		return fmt.Errorf("detach: %s: NBD_DISCONNECT: %w", dev, err)
	}
	// The kernel has sent NBD_CMD_DISC. NBD_CLEAR_SOCK then shuts the
	// socket, so that a server that does not close ends the attachment
	// too, and drops the reference a netlink client (nbd-client) left on
	// the device, without which it would stay attached: nbd-client -d does
	// the same two calls.
	if err := ioctlDevice(dev, nbdClearSock); err != nil {
		return fmt.Errorf("detach: %s: NBD_CLEAR_SOCK: %w", dev, err)
	}
	if !waitDetached(name, 10*time.Second) {
		return fmt.Errorf("detach: %s: still attached (by process %d) 10s after NBD_DISCONNECT", dev, attachedPID(name))
	}
	return nil
}

// ioctlDevice opens dev just for one ioctl: the kernel releases an
// attachment only when every descriptor of the device is closed, so
// detach must not keep one open while it waits.
func ioctlDevice(dev string, nr uintptr) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return nbdIoctl(f.Fd(), nr, 0)
}

// waitDetached polls until the device has no serving process, at most d.
// The kernel removes the pid attribute when the last descriptor of the
// device is closed, so this waits for the attaching process to let go too.
func waitDetached(name string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if attachedPID(name) == 0 {
			return true
		}
	}
	return false
}
