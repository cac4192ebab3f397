package builtin

import (
	"crypto/aes"
	"fmt"
	"os"
	"sync"

	"golang.org/x/crypto/xts"

	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
)

func init() {
	register(&Filter{
		Name:   "crypt",
		Kind:   DiskLevel,
		Params: []string{"on", "key-file"},
		Help:   "encrypts every sector with AES-XTS (key-file holds a 32- or 64-byte key)",
		Disk: func(spec Spec, _ Host) (DeviceDispatch, error) {
			key := spec.Get("key-file")
			if key == "" {
				return nil, fmt.Errorf("filter %q: give key-file=FILE", spec.Raw)
			}
			return func(t *iomgr.Device) (iomgr.DispatchFunc, func() error, error) {
				c, err := openCrypt(key, t.SectorSize)
				if err != nil {
					return nil, nil, err
				}
				return c.dispatch, nil, nil
			}, nil
		},
	})
}

// crypt is the crypt disk filter: every sector is encrypted with AES-XTS,
// the sector number (on the device the filter is attached to) as the tweak,
// so the medium below never holds plaintext.
type crypt struct {
	cipher *xts.Cipher
	sector int64
	bufs   sync.Pool
}

// openCrypt reads a 32-byte (AES-128-XTS) or 64-byte (AES-256-XTS) key.
func openCrypt(keyFile string, sector uint32) (*crypt, error) {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("crypt: key file: %w", err)
	}
	if len(key) != 32 && len(key) != 64 {
		return nil, fmt.Errorf("crypt: key file %s holds %d bytes: want 32 (AES-128-XTS) or 64 (AES-256-XTS)", keyFile, len(key))
	}
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		return nil, fmt.Errorf("crypt: %w", err)
	}
	return &crypt{cipher: c, sector: int64(sector)}, nil
}

func (c *crypt) transform(dst, src []byte, off int64, encrypt bool) {
	for i := int64(0); i < int64(len(src)); i += c.sector {
		s := uint64((off + i) / c.sector)
		if encrypt {
			c.cipher.Encrypt(dst[i:i+c.sector], src[i:i+c.sector], s)
		} else {
			c.cipher.Decrypt(dst[i:i+c.sector], src[i:i+c.sector], s)
		}
	}
}

func (c *crypt) buffer(n int) *[]byte {
	if v := c.bufs.Get(); v != nil {
		b := v.(*[]byte)
		if cap(*b) >= n {
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n)
	return &b
}

// dispatch is the crypt filter's dispatch routine.
func (c *crypt) dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	sl := irp.CurrentStackLocation()
	switch sl.Major {
	case iomgr.MajorWrite:
		p := *sl.Transfer()
		if p.ByteOffset%c.sector != 0 || int64(p.Length)%c.sector != 0 || len(irp.Buffer) < int(p.Length) {
			return irp.Complete(iomgr.StatusInvalidParameter, 0)
		}
		// Encrypt into a buffer of our own: the caller's stays plaintext.
		cb := c.buffer(int(p.Length))
		c.transform(*cb, irp.Buffer[:p.Length], p.ByteOffset, true)
		plain := irp.Buffer
		irp.Buffer = *cb
		st := filter.CallLowerAndWait(dev, irp)
		irp.Buffer = plain
		c.bufs.Put(cb)
		iomgr.CompleteRequest(irp)
		return st
	case iomgr.MajorRead:
		if sl.Minor&iomgr.MinorMDL != 0 {
			return refuseMDL(dev, irp) // the data is decrypted in the caller's buffer
		}
		p := *sl.Transfer()
		if p.ByteOffset%c.sector != 0 || int64(p.Length)%c.sector != 0 || len(irp.Buffer) < int(p.Length) {
			return irp.Complete(iomgr.StatusInvalidParameter, 0)
		}
		st := filter.CallLowerAndWait(dev, irp)
		if st.IsSuccess() {
			c.transform(irp.Buffer[:p.Length], irp.Buffer[:p.Length], p.ByteOffset, false)
		}
		iomgr.CompleteRequest(irp)
		return st
	case iomgr.MajorDeviceControl:
		req, ok := sl.Parameters.DeviceIoControl.Input.(*disk.DataSetRequest)
		if !ok || sl.Parameters.DeviceIoControl.ControlCode != disk.IOCTLStorageManageDataSetAttributes {
			break
		}
		switch req.Action {
		case disk.DataSetZero:
			// Zeros must be stored encrypted: write them sector by sector.
			if req.Flags&disk.ZeroFast != 0 {
				return irp.Complete(iomgr.StatusNotSupported, 0)
			}
			return irp.Complete(c.writeZeros(dev, irp, req.Offset, req.Length), 0)
		case disk.DataSetAllocation:
			// A hole below would decrypt to noise, not zeros: report data.
			if out, ok := irp.SystemBuffer.(*[]disk.Extent); ok {
				*out = []disk.Extent{{Offset: req.Offset, Length: req.Length}}
				return irp.Complete(iomgr.StatusSuccess, 1)
			}
		}
	}
	return filter.PassThrough(dev, irp)
}

// writeZeros writes encrypted zeros over [off, off+n) in chunks.
func (c *crypt) writeZeros(dev *iomgr.Device, irp *iomgr.IRP, off, n int64) iomgr.Status {
	if off%c.sector != 0 || n%c.sector != 0 {
		return iomgr.StatusInvalidParameter
	}
	lower := dev.Extension.(*filter.Extension).Lower
	io := &iomgr.BlockIO{Device: lower, Requestor: irp.Requestor, Here: true}
	const chunk = 1 << 20
	zeros := make([]byte, min(n, chunk))
	buf := make([]byte, len(zeros))
	for done := int64(0); done < n; {
		m := min(n-done, chunk)
		c.transform(buf[:m], zeros[:m], off+done, true)
		if err := io.Transfer(iomgr.MajorWrite, buf[:m], off+done, false); err != nil {
			return iomgr.StatusOf(err)
		}
		done += m
	}
	return iomgr.StatusSuccess
}
