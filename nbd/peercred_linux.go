package nbd

import (
	"net"
	"syscall"
)

// peerPID returns the process id of a unix socket's peer, which the kernel
// recorded when it connected (SO_PEERCRED).
func peerPID(uc *net.UnixConn) (int32, bool) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *syscall.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err != nil || cerr != nil || cred == nil || cred.Pid == 0 {
		return 0, false
	}
	return cred.Pid, true
}
