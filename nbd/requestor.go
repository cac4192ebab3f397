package nbd

import (
	"net"
	"strconv"
)

// requestorOf names the client of a connection once, when it is accepted,
// so that requests carry the name without formatting it each time.
func requestorOf(nc net.Conn, id uint64) string {
	if uc, ok := nc.(*net.UnixConn); ok {
		n := "#" + strconv.FormatUint(id, 10)
		if pid, ok := peerPID(uc); ok {
			return "unix:@" + strconv.FormatInt(int64(pid), 10) + n
		}
		if a := uc.LocalAddr(); a != nil && a.String() != "" {
			return "unix:" + a.String() + n
		}
		return "unix:" + n
	}
	if a := nc.RemoteAddr(); a != nil {
		if s := a.String(); s != "" {
			return s
		}
	}
	return "conn#" + strconv.FormatUint(id, 10)
}
