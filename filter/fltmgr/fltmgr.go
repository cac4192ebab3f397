package fltmgr

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"

	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/mount"
)

// Sentinel errors of registration and attachment.
var (
	ErrAltitudeInUse   = errors.New("altitude is already used by another minifilter")
	ErrBadAltitude     = errors.New("an altitude is a positive decimal number such as 370030 or 385100.5")
	ErrNameInUse       = errors.New("a minifilter with that name is already registered")
	ErrNoSuchFilter    = errors.New("no minifilter with that name is registered")
	ErrAlreadyAttached = errors.New("the minifilter already has an instance on that volume")
	ErrNotAttached     = errors.New("the minifilter has no instance on that volume")
	ErrNoFrame         = errors.New("the filter manager is not attached to that volume")
)

// PreopStatus is what a pre-operation callback returns.
type PreopStatus int

// The pre-operation results.
const (
	// PreopSuccessWithCallback: pass the operation on and call my post callback.
	PreopSuccessWithCallback PreopStatus = iota
	// PreopSuccessNoCallback: pass the operation on; no post callback.
	PreopSuccessNoCallback
	// PreopComplete: I completed the operation (Data.IOStatus holds the
	// result); lower minifilters and the file system never see it.
	PreopComplete
	// PreopSynchronize: pass it on and call my post callback in the
	// dispatching goroutine once the operation completed.
	PreopSynchronize
	// PreopDisallowFastIO: for a fast I/O call, answer "not possible" so
	// the caller sends an IRP instead (treated as SuccessNoCallback for IRPs).
	PreopDisallowFastIO
)

// PostopStatus is what a post-operation callback returns.
type PostopStatus int

// The post-operation results.
const (
	// PostopFinishedProcessing: nothing more to do.
	PostopFinishedProcessing PostopStatus = iota
)

// CallbackData describes one operation to the callbacks (FLT_CALLBACK_DATA).
type CallbackData struct {
	// Major and Minor are the operation.
	Major iomgr.MajorFunction
	Minor iomgr.MinorFunction
	// IRP is the request, nil for a fast I/O call.
	IRP *iomgr.IRP
	// Params are the operation's parameters: the IRP's current stack
	// location, or a location filled in for a fast I/O call.
	Params *iomgr.StackLocation
	// Buffer is the data of a read or write (the IRP's, or the fast I/O caller's).
	Buffer []byte
	// FileObject is the file the operation is on.
	FileObject *iomgr.FileObject
	// IOStatus is the result: set by a pre callback that completes the
	// operation, and by the file system before post callbacks run.
	IOStatus iomgr.IOStatusBlock
	// Requestor says who asked.
	Requestor string
	// FastIO is set for a fast I/O call.
	FastIO bool
}

// PreOperation is a pre-operation callback. completionContext is handed to
// the matching post callback.
type PreOperation func(inst *Instance, data *CallbackData) (status PreopStatus, completionContext any)

// PostOperation is a post-operation callback. draining is set when the
// instance is being torn down before the operation completed.
type PostOperation func(inst *Instance, data *CallbackData, completionContext any, draining bool) PostopStatus

// Operation registers callbacks for one major function.
type Operation struct {
	Major iomgr.MajorFunction
	Pre   PreOperation
	Post  PostOperation
}

// Registration describes a minifilter (FLT_REGISTRATION).
type Registration struct {
	// Name identifies the minifilter (unique).
	Name string
	// Altitude orders minifilters: higher is nearer the caller. A decimal
	// string such as "370030"; unique.
	Altitude string
	// Operations are the callbacks.
	Operations []Operation
	// ManualAttach stops instances being created on every volume
	// automatically; Attach creates them on request.
	ManualAttach bool
	// InstanceSetup is called when an instance is created; an error
	// refuses the attachment.
	InstanceSetup func(inst *Instance) error
	// InstanceTeardown is called when an instance goes away (detach,
	// unload, dismount).
	InstanceTeardown func(inst *Instance)
	// ContextCleanup is called for every instance and stream context when
	// its lifetime ends.
	ContextCleanup func(ctx any)
}

// Filter is a registered minifilter.
type Filter struct {
	Registration
	altitude *big.Rat
	ops      [iomgr.MajorFunctionCount]*Operation
	manager  *Manager
}

// Altitude returns the altitude string.
func (f *Filter) Altitude() string { return f.Registration.Altitude }

// Instance is a minifilter attached to one volume.
type Instance struct {
	// Filter is the minifilter.
	Filter *Filter
	// Frame is the frame device (the filter manager's volume filter device)
	// the instance lives on.
	Frame *iomgr.Device
	// Volume is the storage volume device.
	Volume *iomgr.Device

	mu      sync.Mutex // guards context and streams
	context any
	streams map[any]*streamEntry // keyed by the file system's FsContext
}

type streamEntry struct {
	ctx   any
	opens int
}

// SetContext sets the instance context; the previous one, if any, is cleaned up.
func (i *Instance) SetContext(ctx any) {
	i.mu.Lock()
	old := i.context
	i.context = ctx
	i.mu.Unlock()
	if old != nil && old != ctx {
		i.cleanup(old)
	}
}

// Context returns the instance context.
func (i *Instance) Context() any {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.context
}

// SetStreamContext attaches ctx to the stream (file) fo is open on, for as
// long as the stream has file objects open; then ContextCleanup gets it.
func (i *Instance) SetStreamContext(fo *iomgr.FileObject, ctx any) {
	key := streamKey(fo)
	i.mu.Lock()
	if i.streams == nil {
		i.streams = map[any]*streamEntry{}
	}
	e := i.streams[key]
	if e == nil {
		e = &streamEntry{}
		i.streams[key] = e
	}
	old := e.ctx
	e.ctx = ctx
	i.mu.Unlock()
	if old != nil && old != ctx {
		i.cleanup(old)
	}
}

// StreamContext returns the context of fo's stream, nil if none.
func (i *Instance) StreamContext(fo *iomgr.FileObject) any {
	i.mu.Lock()
	defer i.mu.Unlock()
	if e := i.streams[streamKey(fo)]; e != nil {
		return e.ctx
	}
	return nil
}

func streamKey(fo *iomgr.FileObject) any {
	if fo.FsContext != nil {
		return fo.FsContext
	}
	return fo
}

func (i *Instance) cleanup(ctx any) {
	if f := i.Filter.ContextCleanup; f != nil {
		f(ctx)
	}
}

// streamOpened and streamClosed count the file objects of each stream so
// that stream contexts end with the last one.
func (i *Instance) streamOpened(fo *iomgr.FileObject) {
	key := streamKey(fo)
	i.mu.Lock()
	if i.streams == nil {
		i.streams = map[any]*streamEntry{}
	}
	e := i.streams[key]
	if e == nil {
		e = &streamEntry{}
		i.streams[key] = e
	}
	e.opens++
	i.mu.Unlock()
}

func (i *Instance) streamClosed(fo *iomgr.FileObject) {
	key := streamKey(fo)
	i.mu.Lock()
	e := i.streams[key]
	var ctx any
	if e != nil {
		e.opens--
		if e.opens <= 0 {
			ctx = e.ctx
			delete(i.streams, key)
		}
	}
	i.mu.Unlock()
	if ctx != nil {
		i.cleanup(ctx)
	}
}

// teardown ends the instance: its teardown callback, then its contexts.
func (i *Instance) teardown() {
	if f := i.Filter.InstanceTeardown; f != nil {
		f(i)
	}
	i.mu.Lock()
	ctx := i.context
	i.context = nil
	streams := i.streams
	i.streams = nil
	i.mu.Unlock()
	for _, e := range streams {
		if e.ctx != nil {
			i.cleanup(e.ctx)
		}
	}
	if ctx != nil {
		i.cleanup(ctx)
	}
}

// Manager is the filter manager.
type Manager struct {
	// Frame is the legacy filter the minifilters live in.
	Frame *filter.Legacy

	mu      sync.RWMutex // guards filters and frames
	filters []*Filter    // highest altitude first
	frames  map[*iomgr.Device]*frame
}

// frame is the filter manager's state for one volume.
type frame struct {
	dev       *iomgr.Device
	volume    *iomgr.Device
	instances []*Instance // highest altitude first
}

// Load loads the filter manager (a legacy filter named FltMgr) into mm's
// I/O manager.
func Load(mm *mount.Manager) (*Manager, error) {
	m := &Manager{frames: map[*iomgr.Device]*frame{}}
	legacy, err := filter.Load(mm, "FltMgr", filter.Hooks{
		Dispatch:       m.dispatch,
		VolumeAttached: m.volumeAttached,
		Detaching:      m.detaching,
	})
	if err != nil {
		return nil, err
	}
	m.Frame = legacy
	legacy.Driver.FastIO.Read = m.fastRead
	legacy.Driver.FastIO.Write = m.fastWrite
	legacy.Driver.FastIO.QueryBasicInfo = m.fastQueryBasic
	legacy.Driver.FastIO.QueryStandardInfo = m.fastQueryStandard
	return m, nil
}

func parseAltitude(s string) (*big.Rat, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() <= 0 {
		return nil, fmt.Errorf("altitude %q: %w", s, ErrBadAltitude)
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return nil, fmt.Errorf("altitude %q: %w", s, ErrBadAltitude)
		}
	}
	return r, nil
}

// Register adds a minifilter and, unless it asked for manual attachment,
// creates its instances on every volume the frame is attached to.
func (m *Manager) Register(reg Registration) (*Filter, error) {
	alt, err := parseAltitude(reg.Altitude)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", reg.Name, err)
	}
	f := &Filter{Registration: reg, altitude: alt, manager: m}
	for i := range reg.Operations {
		op := &f.Registration.Operations[i]
		if int(op.Major) >= iomgr.MajorFunctionCount {
			return nil, fmt.Errorf("register %s: major function %v out of range", reg.Name, op.Major)
		}
		f.ops[op.Major] = op
	}
	m.mu.Lock()
	for _, g := range m.filters {
		switch {
		case g.Name == reg.Name:
			m.mu.Unlock()
			return nil, fmt.Errorf("register %s: %w", reg.Name, ErrNameInUse)
		case g.altitude.Cmp(alt) == 0:
			m.mu.Unlock()
			return nil, fmt.Errorf("register %s at %s: %w (%s)", reg.Name, reg.Altitude, ErrAltitudeInUse, g.Name)
		}
	}
	m.filters = append(m.filters, f)
	sort.SliceStable(m.filters, func(i, j int) bool { return m.filters[i].altitude.Cmp(m.filters[j].altitude) > 0 })
	frames := m.framesLocked()
	m.mu.Unlock()
	if !reg.ManualAttach {
		for _, fr := range frames {
			_, _ = m.attach(f, fr)
		}
	}
	return f, nil
}

// Filters returns the registered minifilters, highest altitude first.
func (m *Manager) Filters() []*Filter {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]*Filter(nil), m.filters...)
}

// Filter returns the minifilter named name, or nil.
func (m *Manager) Filter(name string) *Filter {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, f := range m.filters {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func (m *Manager) framesLocked() []*frame {
	out := make([]*frame, 0, len(m.frames))
	for _, fr := range m.frames {
		out = append(out, fr)
	}
	return out
}

// Unregister tears down every instance of the minifilter and removes it.
func (m *Manager) Unregister(name string) error {
	m.mu.Lock()
	var f *Filter
	for i, g := range m.filters {
		if g.Name == name {
			f = g
			m.filters = append(m.filters[:i], m.filters[i+1:]...)
			break
		}
	}
	if f == nil {
		m.mu.Unlock()
		return fmt.Errorf("unregister %s: %w", name, ErrNoSuchFilter)
	}
	var gone []*Instance
	for _, fr := range m.frames {
		for i, inst := range fr.instances {
			if inst.Filter == f {
				gone = append(gone, inst)
				fr.instances = append(append([]*Instance(nil), fr.instances[:i]...), fr.instances[i+1:]...)
				break
			}
		}
	}
	m.mu.Unlock()
	for _, inst := range gone {
		inst.teardown()
	}
	return nil
}

// Attach creates an instance of the minifilter on the volume (a storage
// volume device, mounted, with the frame attached).
func (m *Manager) Attach(name string, volume *iomgr.Device) (*Instance, error) {
	f := m.Filter(name)
	if f == nil {
		return nil, fmt.Errorf("attach %s: %w", name, ErrNoSuchFilter)
	}
	m.mu.RLock()
	var fr *frame
	for _, x := range m.frames {
		if x.volume == volume {
			fr = x
		}
	}
	m.mu.RUnlock()
	if fr == nil {
		return nil, fmt.Errorf("attach %s to %v: %w", name, volume, ErrNoFrame)
	}
	return m.attach(f, fr)
}

// Detach removes the minifilter's instance from the volume.
func (m *Manager) Detach(name string, volume *iomgr.Device) error {
	m.mu.Lock()
	var gone *Instance
	for _, fr := range m.frames {
		if fr.volume != volume {
			continue
		}
		for i, inst := range fr.instances {
			if inst.Filter.Name == name {
				gone = inst
				fr.instances = append(append([]*Instance(nil), fr.instances[:i]...), fr.instances[i+1:]...)
				break
			}
		}
	}
	m.mu.Unlock()
	if gone == nil {
		return fmt.Errorf("detach %s from %v: %w", name, volume, ErrNotAttached)
	}
	gone.teardown()
	return nil
}

// Instances returns the instances on the volume, highest altitude first.
func (m *Manager) Instances(volume *iomgr.Device) []*Instance {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, fr := range m.frames {
		if fr.volume == volume {
			return append([]*Instance(nil), fr.instances...)
		}
	}
	return nil
}

func (m *Manager) attach(f *Filter, fr *frame) (*Instance, error) {
	inst := &Instance{Filter: f, Frame: fr.dev, Volume: fr.volume}
	if f.InstanceSetup != nil {
		if err := f.InstanceSetup(inst); err != nil {
			return nil, fmt.Errorf("attach %s to %v: %w", f.Name, fr.volume, err)
		}
	}
	m.mu.Lock()
	for _, x := range fr.instances {
		if x.Filter == f {
			m.mu.Unlock()
			return nil, fmt.Errorf("attach %s to %v: %w", f.Name, fr.volume, ErrAlreadyAttached)
		}
	}
	// Copy on write: dispatching goroutines read the slice without the lock.
	list := append(append([]*Instance(nil), fr.instances...), inst)
	sort.SliceStable(list, func(i, j int) bool { return list[i].Filter.altitude.Cmp(list[j].Filter.altitude) > 0 })
	fr.instances = list
	m.mu.Unlock()
	return inst, nil
}

// volumeAttached: the frame attached to a new volume; instances follow.
func (m *Manager) volumeAttached(dev *iomgr.Device) {
	fr := &frame{dev: dev, volume: dev.Extension.(*filter.Extension).Real}
	m.mu.Lock()
	m.frames[dev] = fr
	filters := append([]*Filter(nil), m.filters...)
	m.mu.Unlock()
	for _, f := range filters {
		if !f.ManualAttach {
			_, _ = m.attach(f, fr)
		}
	}
}

// detaching: the frame leaves a volume (dismount); its instances end.
func (m *Manager) detaching(dev *iomgr.Device) {
	m.mu.Lock()
	fr := m.frames[dev]
	delete(m.frames, dev)
	m.mu.Unlock()
	if fr == nil {
		return
	}
	for _, inst := range fr.instances {
		inst.teardown()
	}
}

// FrameInstances returns the instances on a frame device (the filter
// manager's device on a mounted volume's stack), highest altitude first,
// nil for a device that is no frame: what a drawing of the stack shows in
// the frame. The slice is the manager's own and must not be modified.
func (m *Manager) FrameInstances(dev *iomgr.Device) []*Instance { return m.instancesOf(dev) }

// instancesOf returns the instances of a frame device. The slice is never
// modified in place (attach and detach copy it), so it may be used without
// the lock.
func (m *Manager) instancesOf(dev *iomgr.Device) []*Instance {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if fr := m.frames[dev]; fr != nil {
		return fr.instances
	}
	return nil
}
