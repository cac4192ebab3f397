package control

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
	"github.com/vdisk-dev/vdisk/volume"
	"github.com/vdisk-dev/vdisk/vpb"
)

// ExportStatuses describes the exports being served.
func (c *Server) ExportStatuses() []ExportStatus {
	out := []ExportStatus{}
	for _, e := range c.exports {
		es := ExportStatus{Name: e.Name, Description: e.Description, Size: e.Device.Size(), ReadOnly: e.ReadOnly, Volumes: []string{}}
		if ed, ok := e.Device.(*export.Device); ok {
			es.Writers = ed.Writers()
			for _, v := range c.volumesUnder(ed) {
				es.Volumes = append(es.Volumes, volume.DosName(v))
			}
		}
		out = append(out, es)
	}
	return out
}

// volumesUnder returns the volumes an export's writes reach: its claims
// when it has them, else the volume it is, or the volumes of its disk.
func (c *Server) volumesUnder(ed *export.Device) []*iomgr.Device {
	if len(ed.Claims) > 0 {
		return ed.Claims
	}
	if _, ok := ed.Device.Extension.(*volume.Extension); ok {
		return []*iomgr.Device{ed.Device}
	}
	for _, img := range c.sys.Images() {
		if img.Disk == ed.Device {
			return img.Volumes
		}
	}
	return nil
}

// exportWriters counts the connections holding write claims on v, each
// export device once (the default export shares the first disk's).
func (c *Server) exportWriters(v *iomgr.Device) int {
	seen := map[*export.Device]bool{}
	n := 0
	for _, e := range c.exports {
		ed, ok := e.Device.(*export.Device)
		if !ok || seen[ed] {
			continue
		}
		seen[ed] = true
		for _, cl := range ed.Claims {
			if cl == v {
				n += ed.Writers()
			}
		}
	}
	return n
}

// VolumeStatuses describes every volume of the System.
func (c *Server) VolumeStatuses() []VolumeStatus {
	out := []VolumeStatus{}
	for _, img := range c.sys.Images() {
		for _, v := range img.Volumes {
			out = append(out, c.volumeStatus(v))
		}
	}
	return out
}

func (c *Server) volumeStatus(v *iomgr.Device) VolumeStatus {
	vs := VolumeStatus{Name: volume.DosName(v), Device: v.String(), ExportWriters: c.exportWriters(v)}
	if ext, ok := v.Extension.(*volume.Extension); ok {
		vs.Size = ext.Size
	}
	if vp := v.VPB(); vp != nil && vp.Mounted() {
		snap := vp.Snapshot()
		vs.Mounted = true
		if snap.Device != nil {
			vs.FileSystem = snap.Device.Driver.Name
		}
		vs.Label = snap.Label
		vs.Serial = fmt.Sprintf("%04X-%04X", snap.SerialNumber>>16, snap.SerialNumber&0xFFFF)
		vs.References = snap.ReferenceCount
		vs.Locked = snap.Flags&vpb.Locked != 0
	}
	return vs
}

// volume resolves a volume name as the CLI spells it.
func (c *Server) volume(name string) (*vdisk.Volume, error) {
	v, err := c.sys.VolumeNamed(name)
	if err != nil {
		return nil, &apiError{code: http.StatusNotFound, err: fmt.Errorf("volume %q: %w", name, err)}
	}
	v.Requestor = Requestor
	return v, nil
}

// volumeOp runs op on the named volume and answers with its status.
func (c *Server) volumeOp(op func(v *vdisk.Volume, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := c.volume(r.PathValue("name"))
		if err == nil {
			err = op(v, r)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, c.volumeStatus(v.Device))
	}
}

// mount mounts the volume in the server; mounting a mounted volume is no
// error.
func (c *Server) mount(v *vdisk.Volume, _ *http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := v.Mount(); err != nil {
		if errors.Is(err, volume.ErrExportedWritable) {
			return fmt.Errorf("mount %s refused: %d NBD connection(s) wrote to it over an export and are still connected (two writers would corrupt it): disconnect them, or serve the image --read-only: %w",
				v.Name, c.exportWriters(v.Device), err)
		}
		return fmt.Errorf("mount %s: %w", v.Name, err)
	}
	return nil
}

// dismountRequest is the body of a dismount.
type dismountRequest struct {
	Force bool `json:"force"`
}

// dismount flushes and dismounts the volume, refused with files open
// unless the request says force.
func (c *Server) dismount(v *vdisk.Volume, r *http.Request) error {
	var req dismountRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if vp := v.Device.VPB(); vp == nil || !vp.Mounted() {
		return fmt.Errorf("dismount %s: %w", v.Name, mount.ErrNotMounted)
	}
	// The lock is the API's own handle: it would hold the volume open.
	c.unlockLocked(v.Device)
	err := v.Dismount(req.Force)
	if errors.Is(err, iomgr.StatusAccessDenied) {
		return fmt.Errorf("dismount %s refused: files are open on it (force dismounts anyway; their handles then fail): %w", v.Name, err)
	}
	if err != nil {
		return fmt.Errorf("dismount %s: %w", v.Name, err)
	}
	return nil
}

// lock takes FSCTL_LOCK_VOLUME on a volume handle the API keeps until
// unlock, dismount or shutdown.
func (c *Server) lock(v *vdisk.Volume, _ *http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locks[v.Device] != nil {
		return &apiError{code: http.StatusConflict, err: fmt.Errorf("lock %s: the control API already holds its lock", v.Name)}
	}
	// A volume open (no path after the volume's name) that mounts it if
	// needed; the lock then belongs to that handle.
	lock, err := v.Lock()
	if errors.Is(err, vdisk.ErrVolumeInUse) {
		return fmt.Errorf("lock %s refused: %w", v.Name, err)
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", v.Name, err)
	}
	c.locks[v.Device] = lock
	return nil
}

// unlock gives back the API's lock on the volume.
func (c *Server) unlock(v *vdisk.Volume, _ *http.Request) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locks[v.Device] == nil {
		return &apiError{code: http.StatusConflict, err: fmt.Errorf("unlock %s: the control API holds no lock on it", v.Name)}
	}
	return c.unlockLocked(v.Device)
}

// unlockLocked gives back the lock the API holds on dev, if any; c.mu is
// held.
func (c *Server) unlockLocked(dev *iomgr.Device) error {
	lock := c.locks[dev]
	if lock == nil {
		return nil
	}
	delete(c.locks, dev)
	// Closing the lock's handle unlocks too (the cleanup of a handle that
	// holds the lock), so the volume is free whatever the control said.
	err := lock.Unlock()
	if err != nil && !errors.Is(err, iomgr.StatusVolumeDismounted) {
		return fmt.Errorf("unlock %s: %w", volume.DosName(dev), err)
	}
	return nil
}
