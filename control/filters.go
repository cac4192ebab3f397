package control

import (
	"errors"
	"net/http"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/filter/builtin"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/stackview"
	"github.com/vdisk-dev/vdisk/volume"
)

// FilterInfo describes a loaded filter for `vdisk filter list`; the JSON
// field names are stable.
type FilterInfo struct {
	// ID is what `vdisk filter detach` takes.
	ID string `json:"id"`
	// Name is the built-in filter's name, Spec the spec it was loaded with.
	Name string `json:"name"`
	Spec string `json:"spec"`
	// Kind is "minifilter" (through the filter manager, on file system
	// volumes) or "disk" (a legacy filter on disk and partition stacks).
	Kind string `json:"kind"`
	// Altitude is a minifilter's altitude.
	Altitude string `json:"altitude,omitempty"`
	// Devices are a disk filter's device objects, with what they are
	// attached to and whether another device is attached above them (which
	// stops the filter from leaving: detach is last in, first out).
	Devices []FilterDeviceInfo `json:"devices,omitempty"`
	// Volumes are the storage volumes a minifilter has an instance on.
	Volumes []string `json:"volumes,omitempty"`
}

// FilterDeviceInfo is one device object of a disk filter, named as in
// stackview.Info.
type FilterDeviceInfo struct {
	Name string `json:"name"`
	// On is the device at the bottom of the stack (the disk or partition);
	// AttachedTo the device directly beneath, another filter's perhaps.
	On         string `json:"on"`
	AttachedTo string `json:"attached_to"`
	// Below is the device attached above this one, if any: while there
	// is one, the filter cannot leave.
	Below string `json:"below,omitempty"`
}

// FilterInfos describes the loaded filters in load order, as GET
// /v1/filters answers.
func (c *Server) FilterInfos() []FilterInfo { return filterInfos(c.sys) }

// filterInfos describes the loaded filters in load order.
func filterInfos(s *vdisk.System) []FilterInfo {
	names := stackview.NewNamer(s.Devices())
	out := []FilterInfo{}
	for _, f := range s.Filters() {
		fi := FilterInfo{ID: f.ID(), Name: f.Spec.Name, Spec: f.Spec.Raw, Kind: builtin.DiskLevel.String()}
		if f.Minifilter != nil {
			fi.Kind, fi.Altitude = builtin.Minifilter.String(), f.Minifilter.Altitude()
			if fm, err := s.FilterManager(); err == nil {
				for _, img := range s.Images() {
					for _, v := range img.Volumes {
						for _, inst := range fm.Instances(v) {
							if inst.Filter == f.Minifilter {
								fi.Volumes = append(fi.Volumes, volume.DosName(v))
							}
						}
					}
				}
			}
		}
		if f.Disk != nil {
			for _, d := range f.Disk.Devices() {
				di := FilterDeviceInfo{Name: names.Name(d), On: names.Name(iomgr.BottomDevice(d)), AttachedTo: names.Name(d.AttachedTo())}
				if above := d.AttachedDevice(); above != nil {
					di.Below = names.Name(above)
				}
				fi.Devices = append(fi.Devices, di)
			}
		}
		out = append(out, fi)
	}
	return out
}

// attachRequest is the body of a filter attach.
type attachRequest struct {
	Spec string `json:"spec"`
}

// attachFilter loads a built-in filter into the running System.
func (c *Server) attachFilter(w http.ResponseWriter, r *http.Request) {
	var req attachRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Spec == "" {
		writeError(w, &apiError{code: http.StatusBadRequest, err: errors.New("attach: give a filter spec NAME[:key=value,...]")})
		return
	}
	c.mu.Lock()
	lf, err := c.sys.AddFilterWhileServing(req.Spec)
	c.mu.Unlock()
	if err != nil {
		if httpStatus(err) == http.StatusInternalServerError {
			// A spec the filter refused (unknown name, bad key, a
			// file it could not open): the request was at fault.
			err = &apiError{code: http.StatusBadRequest, err: err}
		}
		writeError(w, err)
		return
	}
	for _, fi := range filterInfos(c.sys) {
		if fi.ID == lf.ID() {
			writeJSON(w, fi)
			return
		}
	}
	writeJSON(w, FilterInfo{ID: lf.ID(), Name: lf.Spec.Name, Spec: lf.Spec.Raw})
}

// detachFilter unloads a filter (last in, first out for disk filters).
func (c *Server) detachFilter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	err := c.sys.RemoveFilter(id)
	c.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]string{"detached": id})
}
