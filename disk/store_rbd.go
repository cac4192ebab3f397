//go:build rbd

package disk

// The librbd side of RBDStore, through go-ceph (cgo). Build with
// -tags rbd,pacific against Ceph 16's librbd-dev and librados-dev; a newer
// Ceph takes its own go-ceph release tag, or none for the newest.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ceph/go-ceph/rados"
	"github.com/ceph/go-ceph/rbd"
)

const rbdCompiled = true

// rbdFeatures are the features vdisk gives the images it creates and
// clones: Ceph's defaults, among them exclusive-lock, which keeps a second
// writer out.
const rbdFeatures = rbd.FeatureLayering | rbd.FeatureExclusiveLock | rbd.FeatureObjectMap |
	rbd.FeatureFastDiff | rbd.FeatureDeepFlatten

func (o RBDOptions) id() string {
	if o.ID == "" {
		return "admin"
	}
	return o.ID
}

func (o RBDOptions) connectTimeout() time.Duration {
	if o.ConnectTimeout <= 0 {
		return 30 * time.Second
	}
	return o.ConnectTimeout
}

// rbdConn is a connection to the cluster with an I/O context on the spec's
// pool and namespace.
type rbdConn struct {
	conn  *rados.Conn
	ioctx *rados.IOContext
}

// errno is the (positive) errno of a go-ceph error, 0 if it has none.
func errno(err error) syscall.Errno {
	var c interface{ ErrorCode() int }
	if errors.As(err, &c) {
		n := c.ErrorCode()
		if n < 0 {
			n = -n
		}
		return syscall.Errno(n)
	}
	return 0
}

// rbdMissing is a pool, image or snapshot that is not there: it says
// which, and matches fs.ErrNotExist.
type rbdMissing string

func (e rbdMissing) Error() string        { return string(e) }
func (e rbdMissing) Is(target error) bool { return target == fs.ErrNotExist }

// rbdError names what failed and turns librbd's errnos into the errors
// callers test for.
func rbdError(what string, spec RBDSpec, err error) error {
	if err == nil {
		return nil
	}
	switch errno(err) {
	case syscall.ENOENT:
		if what == "open" {
			missing := "image"
			if spec.Snap != "" {
				missing = "image or snapshot"
			}
			return fmt.Errorf("%s: %w", spec, rbdMissing("no such "+missing))
		}
		return fmt.Errorf("%s %s: %w (%v)", what, spec, fs.ErrNotExist, err)
	case syscall.EEXIST:
		return fmt.Errorf("%s %s: %w (%v)", what, spec, fs.ErrExist, err)
	case syscall.ESHUTDOWN: // EBLOCKLISTED
		return fmt.Errorf("%s %s: %w (%v)", what, spec, ErrRBDFenced, err)
	case syscall.EACCES, syscall.EPERM:
		return fmt.Errorf("%s %s: %w (%v)", what, spec, fs.ErrPermission, err)
	}
	return fmt.Errorf("%s %s: %w", what, spec, err)
}

// dialRBD connects to the cluster as opts say and opens spec's pool.
func dialRBD(spec RBDSpec, opts RBDOptions) (*rbdConn, error) {
	conn, err := rados.NewConnWithUser(opts.id())
	if err != nil {
		return nil, fmt.Errorf("ceph client %q: %w", opts.id(), err)
	}
	fail := func(err error) (*rbdConn, error) {
		conn.Shutdown()
		return nil, err
	}
	if opts.ConfFile != "" {
		if err := conn.ReadConfigFile(opts.ConfFile); err != nil {
			if errno(err) == syscall.ENOENT || errno(err) == syscall.EINVAL {
				return fail(fmt.Errorf("read Ceph configuration %s: %w (%v)", opts.ConfFile, fs.ErrNotExist, err))
			}
			return fail(fmt.Errorf("read Ceph configuration %s: %w", opts.ConfFile, err))
		}
	} else if err := conn.ReadDefaultConfigFile(); err != nil {
		return fail(fmt.Errorf("no Ceph configuration given, and none found at $CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config or ./ceph.conf: %w", err))
	}
	// CEPH_ARGS, as the ceph and rbd commands honour it.
	if err := conn.ParseDefaultConfigEnv(); err != nil {
		return fail(fmt.Errorf("CEPH_ARGS: %w", err))
	}
	secs := strconv.Itoa(int(max(opts.connectTimeout()/time.Second, 1)))
	for _, o := range []string{"client_mount_timeout", "rados_mon_op_timeout"} {
		if err := conn.SetConfigOption(o, secs); err != nil {
			return fail(fmt.Errorf("set %s: %w", o, err))
		}
	}
	if err := conn.Connect(); err != nil {
		where := opts.ConfFile
		if where == "" {
			where = "the default configuration"
		}
		return fail(fmt.Errorf("connect to the Ceph cluster of %s as client.%s: %w", where, opts.id(), err))
	}
	ioctx, err := conn.OpenIOContext(spec.Pool)
	if err != nil {
		if errno(err) == syscall.ENOENT {
			return fail(fmt.Errorf("%s: %w", spec, rbdMissing(fmt.Sprintf("no pool %q", spec.Pool))))
		}
		return fail(fmt.Errorf("%s: open pool %q: %w", spec, spec.Pool, err))
	}
	ioctx.SetNamespace(spec.Namespace)
	return &rbdConn{conn: conn, ioctx: ioctx}, nil
}

func (c *rbdConn) close() {
	c.ioctx.Destroy()
	c.conn.Shutdown()
}

// client is the cluster's name for this connection, as lock lists show it.
func (c *rbdConn) client() string {
	return "client." + strconv.FormatUint(c.conn.GetInstanceID(), 10)
}

// cephImage is an open image: the rbdImage of a built-in RBDStore.
type cephImage struct {
	c        *rbdConn
	img      *rbd.Image
	spec     RBDSpec
	fastZero bool
	// wholeObjects: the image has fast-diff, so its object map answers
	// allocation queries per object without asking the OSDs.
	wholeObjects bool
}

func openRBDImage(spec RBDSpec, opts RBDOptions, readOnly bool) (rbdImage, int64, error) {
	c, err := dialRBD(spec, opts)
	if err != nil {
		return nil, 0, err
	}
	var img *rbd.Image
	if readOnly {
		img, err = rbd.OpenImageReadOnly(c.ioctx, spec.Image, spec.Snap)
	} else {
		img, err = rbd.OpenImage(c.ioctx, spec.Image, rbd.NoSnapshot)
	}
	if err != nil {
		c.close()
		return nil, 0, rbdError("open", spec, err)
	}
	ci := &cephImage{c: c, img: img, spec: spec}
	fail := func(err error) (rbdImage, int64, error) {
		ci.close()
		return nil, 0, err
	}
	size, err := img.GetSize()
	if err != nil {
		return fail(rbdError("size of", spec, err))
	}
	if size > 1<<62 {
		return fail(fmt.Errorf("%s: size %d is too large", spec, size))
	}
	features, err := img.GetFeatures()
	if err != nil {
		return fail(rbdError("features of", spec, err))
	}
	ci.wholeObjects = features&rbd.FeatureFastDiff != 0
	if !readOnly {
		if features&rbd.FeatureExclusiveLock == 0 {
			return fail(fmt.Errorf("%s has no exclusive-lock feature, so vdisk cannot keep other writers out; "+
				"enable it with 'rbd feature enable %s exclusive-lock' or open the image read-only",
				spec, strings.TrimPrefix(spec.Head().String(), RBDPrefix)))
		}
		if err := ci.lock(opts.LockWait); err != nil {
			return fail(err)
		}
	}
	// librbd turns a write-same of zeros into a discard of the whole
	// range, partial ends included, unless configured not to.
	v, err := c.conn.GetConfigOption("rbd_discard_on_zeroed_write_same")
	ci.fastZero = err == nil && v == "true"
	return ci, int64(size), nil
}

// lock takes the image's exclusive lock, asking again until wait has
// passed while another client holds it. The image has the exclusive-lock
// feature.
func (ci *cephImage) lock(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := ci.img.LockAcquire(rbd.LockModeExclusive)
		if err == nil {
			// librbd answers success also when it only asked the holder;
			// only ownership counts.
			var owner bool
			if owner, err = ci.img.LockIsExclusiveOwner(); err == nil && owner {
				return nil
			}
		}
		if err != nil {
			switch errno(err) {
			case syscall.EROFS, syscall.EBUSY, syscall.EAGAIN, syscall.ETIMEDOUT:
			default:
				return rbdError("lock", ci.spec, err)
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			holders, herr := ci.holders()
			if herr != nil {
				return fmt.Errorf("%s: %w (and listing the holders failed: %v)", ci.spec, ErrRBDLocked, herr)
			}
			return &RBDLockedError{Spec: ci.spec, Holders: holders}
		}
		time.Sleep(min(left, time.Second))
	}
}

// holders lists the clients holding the image's lock, and whether each
// still watches the image (is alive, or died less than the OSDs' watch
// timeout ago).
func (ci *cephImage) holders() ([]RBDLocker, error) {
	_, lockers, err := ci.img.ListLockers()
	if err != nil {
		return nil, rbdError("list lockers of", ci.spec, err)
	}
	watchers, err := ci.img.ListWatchers()
	if err != nil {
		return nil, rbdError("list watchers of", ci.spec, err)
	}
	var out []RBDLocker
	for _, l := range lockers {
		h := RBDLocker{Client: l.Client, Cookie: l.Cookie, Address: l.Addr}
		for _, w := range watchers {
			if w.Addr == l.Addr {
				h.Watching = true
			}
		}
		out = append(out, h)
	}
	return out, nil
}

func (ci *cephImage) client() string { return ci.c.client() }

func (ci *cephImage) readAt(p []byte, off int64) error {
	n, err := ci.img.ReadAt(p, off)
	if err == nil && n < len(p) || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return rbdError("read", ci.spec, err)
}

func (ci *cephImage) writeAt(p []byte, off int64) error {
	n, err := ci.img.WriteAt(p, off)
	if err == nil && n < len(p) || errors.Is(err, io.EOF) {
		err = io.ErrShortWrite
	}
	return rbdError("write", ci.spec, err)
}

func (ci *cephImage) discard(off, length int64) error {
	_, err := ci.img.Discard(uint64(off), uint64(length))
	return rbdError("discard", ci.spec, err)
}

// zeroByte is the pattern of zero's write-same.
var zeroByte = []byte{0}

func (ci *cephImage) zero(off, length int64) error {
	_, err := ci.img.WriteSame(uint64(off), uint64(length), zeroByte, 0)
	return rbdError("zero", ci.spec, err)
}

func (ci *cephImage) zeroIsFast() bool { return ci.fastZero }

func (ci *cephImage) flush() error {
	return rbdError("flush", ci.spec, ci.img.Flush())
}

// extents is RBD's diff of the image since its creation, parent included.
// With fast-diff it is per object, from the object map, as QEMU's RBD
// driver asks for it (`rbd diff --whole-object`): a query over a large
// image then costs no OSD round trip per object. Without, librbd lists
// each object's data (`rbd diff`).
func (ci *cephImage) extents(off, length int64, fn func(off, length int64, data bool)) error {
	whole := rbd.DisableWholeObject
	if ci.wholeObjects {
		whole = rbd.EnableWholeObject
	}
	err := ci.img.DiffIterate(rbd.DiffIterateConfig{
		SnapName:      rbd.NoSnapshot, // since the image was created
		Offset:        uint64(off),
		Length:        uint64(length),
		IncludeParent: rbd.IncludeParent,
		WholeObject:   whole,
		Callback: func(o, n uint64, exists int, _ interface{}) int {
			fn(int64(o), int64(n), exists != 0)
			return 0
		},
	})
	return rbdError("diff", ci.spec, err)
}

// close releases the lock (librbd does so when the image closes, after
// flushing its cache) and the connection.
func (ci *cephImage) close() error {
	err := ci.img.Close()
	ci.c.close()
	return rbdError("close", ci.spec, err)
}

// imageOptions are the options of the images vdisk creates.
func imageOptions() (*rbd.ImageOptions, error) {
	o := rbd.NewRbdImageOptions()
	if err := o.SetUint64(rbd.ImageOptionFeatures, rbdFeatures); err != nil {
		o.Destroy()
		return nil, err
	}
	return o, nil
}

func createRBD(spec RBDSpec, size int64, opts RBDOptions) error {
	c, err := dialRBD(spec, opts)
	if err != nil {
		return err
	}
	defer c.close()
	o, err := imageOptions()
	if err != nil {
		return fmt.Errorf("create %s: %w", spec, err)
	}
	defer o.Destroy()
	return rbdError("create", spec, rbd.CreateImage(c.ioctx, spec.Image, uint64(size), o))
}

func removeRBD(spec RBDSpec, opts RBDOptions) error {
	c, err := dialRBD(spec, opts)
	if err != nil {
		return err
	}
	defer c.close()
	return rbdError("remove", spec, rbd.RemoveImage(c.ioctx, spec.Image))
}

func snapshotRBD(spec RBDSpec, protect bool, opts RBDOptions) error {
	c, err := dialRBD(spec, opts)
	if err != nil {
		return err
	}
	defer c.close()
	img, err := rbd.OpenImage(c.ioctx, spec.Image, rbd.NoSnapshot)
	if err != nil {
		return rbdError("open", spec.Head(), err)
	}
	defer img.Close()
	snap, err := img.CreateSnapshot(spec.Snap)
	if err != nil {
		return rbdError("snapshot", spec, err)
	}
	if protect {
		return rbdError("protect", spec, snap.Protect())
	}
	return nil
}

func cloneRBD(parent, child RBDSpec, opts RBDOptions) error {
	pc, err := dialRBD(parent, opts)
	if err != nil {
		return err
	}
	defer pc.close()
	img, err := rbd.OpenImage(pc.ioctx, parent.Image, rbd.NoSnapshot)
	if err != nil {
		return rbdError("open", parent.Head(), err)
	}
	snap := img.GetSnapshot(parent.Snap)
	protected, err := snap.IsProtected()
	if err == nil && !protected {
		err = snap.Protect()
	}
	if cerr := img.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rbdError("protect", parent, err)
	}
	cctx := pc.ioctx
	if child.Pool != parent.Pool || child.Namespace != parent.Namespace {
		cc, err := dialRBD(child, opts)
		if err != nil {
			return err
		}
		defer cc.close()
		cctx = cc.ioctx
	}
	o, err := imageOptions()
	if err != nil {
		return fmt.Errorf("clone %s: %w", child, err)
	}
	defer o.Destroy()
	return rbdError("clone "+parent.String()+" to", child,
		rbd.CloneImage(pc.ioctx, parent.Image, parent.Snap, cctx, child.Image, o))
}

func breakRBDLock(spec RBDSpec, opts RBDOptions) ([]RBDLocker, error) {
	c, err := dialRBD(spec, opts)
	if err != nil {
		return nil, err
	}
	defer c.close()
	// Writable, though nothing is written: librbd lists and breaks the
	// exclusive lock only through an image opened so, and opening takes
	// no lock.
	img, err := rbd.OpenImage(c.ioctx, spec.Image, rbd.NoSnapshot)
	if err != nil {
		return nil, rbdError("open", spec, err)
	}
	defer img.Close()
	ci := &cephImage{c: c, img: img, spec: spec}
	holders, err := ci.holders()
	if err != nil {
		return nil, err
	}
	owners, err := img.LockGetOwners()
	if err != nil {
		return nil, rbdError("lock owners of", spec, err)
	}
	for _, o := range owners {
		if err := img.LockBreak(rbd.LockModeExclusive, o.Owner); err != nil && errno(err) != syscall.ENOENT {
			return nil, rbdError("break the lock of "+o.Owner+" on", spec, err)
		}
	}
	return holders, nil
}
