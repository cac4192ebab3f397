package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pojntfx/go-nbd/pkg/protocol"
	"github.com/urfave/cli/v2"
)

// attach and detach connect a Linux kernel NBD device (/dev/nbdN) to an
// export, as `nbd-client -N EXPORT HOST PORT /dev/nbdN -b 512` does. The
// negotiation is done here, in user space, with go-nbd's protocol
// structures; the kernel side (ioctls) is in attach_linux.go.
//
// go-nbd's own kernel client (pkg/client) is not used: it sends client
// flags 0 (plain newstyle), which vdisk's server refuses as the NBD spec
// allows, asks for no block size, and never hands the export's
// transmission flags to the kernel (NBD_SET_FLAGS), so the kernel would
// neither know an export is read-only nor send FLUSH. It also needs a udev
// module this one does not require.

// defaultNBDPort is the IANA port of NBD, the port of nbd:// URIs that name
// none.
const defaultNBDPort = "10809"

// negotiateTimeout bounds the handshake: a server that accepts the
// connection but never answers must not hang attach.
const negotiateTimeout = 30 * time.Second

// Handshake and transmission flags and error replies of the NBD protocol
// that go-nbd's protocol package does not name.
const (
	nbdFlagNoZeroes       = 1 << 1 // server handshake flag and client flag
	nbdTFlagReadOnly      = 1 << 1 // transmission flag
	nbdRepErrUnsupported  = 1<<31 + 1
	nbdRepErrTLSRequired  = 1<<31 + 5
	nbdRepErrUnknown      = 1<<31 + 6
	nbdRepErrShutdown     = 1<<31 + 7
	nbdRepErrBlockSizeReq = 1<<31 + 8
	maxReplyPayload       = 64 << 10 // bounds what a hostile server can make attach allocate
)

// nbdTarget is a parsed nbd://HOST[:PORT]/EXPORT URI.
type nbdTarget struct {
	Addr   string // host:port to dial
	Export string // export name; "" is the server's default export
}

// parseNBDURI parses nbd://HOST[:PORT]/EXPORT. The export name is the
// (percent-decoded) path without its leading slash, so `disk@1` needs no
// escaping.
func parseNBDURI(s string) (nbdTarget, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nbdTarget{}, fmt.Errorf("%q is not a URI: %w", s, err)
	}
	if u.Scheme != "nbd" {
		return nbdTarget{}, fmt.Errorf("%q: want an nbd://HOST[:PORT]/EXPORT URI (attach speaks neither TLS nor unix sockets)", s)
	}
	if u.Hostname() == "" {
		return nbdTarget{}, fmt.Errorf("%q names no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nbdTarget{}, fmt.Errorf("%q: user info, queries and fragments are not supported", s)
	}
	port := u.Port()
	if port == "" {
		port = defaultNBDPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nbdTarget{}, fmt.Errorf("%q: port %q is not a TCP port", s, port)
	}
	return nbdTarget{Addr: net.JoinHostPort(u.Hostname(), port), Export: strings.TrimPrefix(u.Path, "/")}, nil
}

// exportInfo is what NBD_OPT_GO tells about the export.
type exportInfo struct {
	Size      uint64
	Flags     uint16 // transmission flags, handed to the kernel as they are
	MinBlock  uint32 // 0 when the server sent no NBD_INFO_BLOCK_SIZE
	PrefBlock uint32
	MaxBlock  uint32
}

// ReadOnly reports whether the server exports read-only.
func (e exportInfo) ReadOnly() bool { return e.Flags&nbdTFlagReadOnly != 0 }

// negotiate runs fixed newstyle negotiation with NBD_OPT_GO for export on
// rw, asking for block size constraints. On success the connection is in
// transmission phase, ready to be handed to the kernel.
func negotiate(rw io.ReadWriter, export string) (exportInfo, error) {
	var hello protocol.NegotiationNewstyleHeader
	if err := binary.Read(rw, binary.BigEndian, &hello); err != nil {
		return exportInfo{}, fmt.Errorf("reading the server's greeting: %w", err)
	}
	if hello.OldstyleMagic != protocol.NEGOTIATION_MAGIC_OLDSTYLE || hello.OptionMagic != protocol.NEGOTIATION_MAGIC_OPTION {
		return exportInfo{}, errors.New("not an NBD newstyle server (bad greeting magic)")
	}
	if hello.HandshakeFlags&protocol.NEGOTIATION_HANDSHAKE_FLAG_FIXED_NEWSTYLE == 0 {
		return exportInfo{}, errors.New("the server does not speak fixed newstyle NBD, which NBD_OPT_GO needs")
	}
	cflags := uint32(protocol.NEGOTIATION_HANDSHAKE_FLAG_FIXED_NEWSTYLE)
	if hello.HandshakeFlags&nbdFlagNoZeroes != 0 {
		cflags |= nbdFlagNoZeroes
	}
	// Client flags, then NBD_OPT_GO: name length, name, one information
	// request (block size). Writes to a bytes.Buffer cannot fail.
	var opt bytes.Buffer
	binary.Write(&opt, binary.BigEndian, cflags)
	binary.Write(&opt, binary.BigEndian, protocol.NegotiationOptionHeader{
		OptionMagic: protocol.NEGOTIATION_MAGIC_OPTION,
		ID:          protocol.NEGOTIATION_ID_OPTION_GO,
		Length:      uint32(4 + len(export) + 2 + 2),
	})
	binary.Write(&opt, binary.BigEndian, uint32(len(export)))
	opt.WriteString(export)
	binary.Write(&opt, binary.BigEndian, uint16(1))
	binary.Write(&opt, binary.BigEndian, protocol.NEGOTIATION_TYPE_INFO_BLOCKSIZE)
	if _, err := rw.Write(opt.Bytes()); err != nil {
		return exportInfo{}, fmt.Errorf("sending NBD_OPT_GO: %w", err)
	}

	var info exportInfo
	gotExport := false
	for {
		var h protocol.NegotiationReplyHeader
		if err := binary.Read(rw, binary.BigEndian, &h); err != nil {
			return exportInfo{}, fmt.Errorf("reading the reply to NBD_OPT_GO: %w", err)
		}
		if h.ReplyMagic != protocol.NEGOTIATION_MAGIC_REPLY || h.ID != protocol.NEGOTIATION_ID_OPTION_GO {
			return exportInfo{}, errors.New("malformed reply to NBD_OPT_GO (bad magic or option)")
		}
		if h.Length > maxReplyPayload {
			return exportInfo{}, fmt.Errorf("reply to NBD_OPT_GO too long (%d bytes)", h.Length)
		}
		data := make([]byte, h.Length)
		if _, err := io.ReadFull(rw, data); err != nil {
			return exportInfo{}, fmt.Errorf("reading the reply to NBD_OPT_GO: %w", err)
		}
		switch h.Type {
		case protocol.NEGOTIATION_TYPE_REPLY_ACK:
			if !gotExport {
				return exportInfo{}, errors.New("the server acknowledged NBD_OPT_GO without telling the export's size")
			}
			return info, nil
		case protocol.NEGOTIATION_TYPE_REPLY_INFO:
			if len(data) < 2 {
				return exportInfo{}, errors.New("empty NBD_REP_INFO")
			}
			switch binary.BigEndian.Uint16(data) {
			case protocol.NEGOTIATION_TYPE_INFO_EXPORT:
				if len(data) != 12 {
					return exportInfo{}, fmt.Errorf("NBD_INFO_EXPORT of %d bytes, want 12", len(data))
				}
				info.Size = binary.BigEndian.Uint64(data[2:])
				info.Flags = binary.BigEndian.Uint16(data[10:])
				gotExport = true
			case protocol.NEGOTIATION_TYPE_INFO_BLOCKSIZE:
				if len(data) != 14 {
					return exportInfo{}, fmt.Errorf("NBD_INFO_BLOCK_SIZE of %d bytes, want 14", len(data))
				}
				info.MinBlock = binary.BigEndian.Uint32(data[2:])
				info.PrefBlock = binary.BigEndian.Uint32(data[6:])
				info.MaxBlock = binary.BigEndian.Uint32(data[10:])
			}
			// Other information (name, description) is not needed.
		default:
			// The server's words go to a terminal: no control characters.
			msg := strings.TrimSpace(strings.Map(func(r rune) rune {
				if unicode.IsControl(r) {
					return -1
				}
				return r
			}, string(data)))
			if msg != "" {
				msg = ": " + msg
			}
			switch h.Type {
			case nbdRepErrUnknown:
				return exportInfo{}, fmt.Errorf("the server has no export %q%s", export, msg)
			case nbdRepErrTLSRequired:
				return exportInfo{}, fmt.Errorf("the server requires TLS, which attach does not speak%s", msg)
			case nbdRepErrUnsupported:
				return exportInfo{}, fmt.Errorf("the server does not support NBD_OPT_GO%s", msg)
			case nbdRepErrBlockSizeReq:
				return exportInfo{}, fmt.Errorf("the server requires block size negotiation%s", msg)
			case nbdRepErrShutdown:
				return exportInfo{}, fmt.Errorf("the server is shutting down%s", msg)
			}
			if h.Type&(1<<31) != 0 {
				return exportInfo{}, fmt.Errorf("the server refused export %q (error reply %#x)%s", export, h.Type, msg)
			}
			return exportInfo{}, fmt.Errorf("unexpected reply %#x to NBD_OPT_GO", h.Type)
		}
	}
}

// checkBlockSize tells whether the kernel may use block size bs with this
// export: a power of two the kernel accepts (512 to 4096 bytes, as for
// nbd-client -b) within what the server allows, dividing the export size.
func checkBlockSize(bs uint32, info exportInfo) error {
	if bs < 512 || bs > 4096 || bs&(bs-1) != 0 {
		return fmt.Errorf("block size %d: want a power of two from 512 to 4096", bs)
	}
	if info.MinBlock != 0 && bs < info.MinBlock {
		return fmt.Errorf("block size %d is below the export's minimum of %d", bs, info.MinBlock)
	}
	if info.MaxBlock != 0 && bs > info.MaxBlock {
		return fmt.Errorf("block size %d is above the export's maximum of %d", bs, info.MaxBlock)
	}
	if info.Size%uint64(bs) != 0 {
		return fmt.Errorf("the export's size %d is not a multiple of the block size %d", info.Size, bs)
	}
	return nil
}

// dialExport connects to target and negotiates its export, within
// negotiateTimeout. The returned connection is in transmission phase with
// no deadline left on it.
func dialExport(target nbdTarget) (*net.TCPConn, exportInfo, error) {
	nc, err := net.DialTimeout("tcp", target.Addr, negotiateTimeout)
	if err != nil {
		return nil, exportInfo{}, err
	}
	conn := nc.(*net.TCPConn)
	if err := conn.SetDeadline(time.Now().Add(negotiateTimeout)); err != nil {
		conn.Close()
		return nil, exportInfo{}, err
	}
	info, err := negotiate(conn, target.Export)
	if err != nil {
		conn.Close()
		return nil, exportInfo{}, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, exportInfo{}, err
	}
	return conn, info, nil
}

func attachCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "attach",
		Usage:     "connect a Linux kernel NBD device to an export (Linux, root, nbd module)",
		ArgsUsage: "nbd://HOST[:PORT]/EXPORT /dev/nbdN",
		Description: `Negotiates EXPORT (as nbd-client -N EXPORT does) and hands the connection to
the kernel's NBD driver, with the export's size, its flags (read-only, flush,
trim) and the block size. attach stays in the foreground while the device is
attached, because the kernel serves the device from within this process's
NBD_DO_IT call: it returns after "vdisk detach /dev/nbdN" (exit status 0),
after SIGINT, SIGTERM or SIGHUP (which detach the device cleanly, like
detach), or when the connection to the server ends. Run it in the
background (&, or a service manager) to keep using the shell; the device
is ready when attach prints "attached". The default PORT is 10809;
"nbd://HOST/" names the server's default export.

Examples:
   vdisk serve disk.img &
   modprobe nbd
   vdisk attach nbd://127.0.0.1/disk@1 /dev/nbd0 &
   mount /dev/nbd0 /mnt && ls /mnt && umount /mnt
   vdisk detach /dev/nbd0`,
		Flags: []cli.Flag{
			&cli.UintFlag{Name: "block-size", Usage: "the kernel device's logical block size (512 to 4096)", Value: 512},
			&cli.UintFlag{Name: "timeout", Usage: "seconds before the kernel gives up on a request (0: the kernel's default)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usagef("attach: want nbd://HOST[:PORT]/EXPORT and /dev/nbdN, got %d arguments", c.NArg())
			}
			target, err := parseNBDURI(c.Args().Get(0))
			if err != nil {
				return usagef("attach: %v", err)
			}
			bs := c.Uint("block-size")
			if bs < 512 || bs > 4096 || bs&(bs-1) != 0 {
				return usagef("attach: --block-size %d: want a power of two from 512 to 4096", bs)
			}
			return attach(target, c.Args().Get(1), uint32(bs), c.Uint("timeout"))
		},
	})
}

func detachCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "detach",
		Usage:     "disconnect a Linux kernel NBD device attached by vdisk attach or nbd-client",
		ArgsUsage: "/dev/nbdN",
		Description: `Sends NBD_DISCONNECT to the device (the kernel tells the server NBD_CMD_DISC)
and NBD_CLEAR_SOCK (the socket is shut), as nbd-client -d does, then waits
up to 10 seconds for the device to be released, so that it can be attached
again at once. Unmount file systems on it first.`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("detach: want /dev/nbdN, got %d arguments", c.NArg())
			}
			return detach(c.Args().First())
		},
	})
}
