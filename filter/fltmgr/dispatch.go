package fltmgr

import (
	"github.com/vdisk-dev/vdisk/filter"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// post is one post callback owed for an operation.
type post struct {
	inst *Instance
	fn   PostOperation
	ctx  any
}

// operation is the frame's state for one IRP on its way down and back.
type operation struct {
	m     *Manager
	insts []*Instance
	data  CallbackData
	posts []post
	buf   [4]post
}

// runPosts calls the owed post callbacks, lowest altitude first.
func (op *operation) runPosts() {
	for i := len(op.posts) - 1; i >= 0; i-- {
		p := op.posts[i]
		p.fn(p.inst, &op.data, p.ctx, false)
	}
}

// trackStreams keeps the per-stream context lifetimes: a stream lives from
// its first successful create to its last close.
func (op *operation) trackStreams() {
	if !op.data.IOStatus.Status.IsSuccess() || op.data.FileObject == nil {
		return
	}
	switch op.data.Major {
	case iomgr.MajorCreate:
		for _, inst := range op.insts {
			inst.streamOpened(op.data.FileObject)
		}
	case iomgr.MajorClose:
		for _, inst := range op.insts {
			inst.streamClosed(op.data.FileObject)
		}
	}
}

// preOutcome is how the pre callbacks left an operation.
type preOutcome int

const (
	passOn     preOutcome = iota // send it down; posts run as they complete
	passOnSync                   // send it down; posts run in the dispatching goroutine
	completed                    // a pre callback completed it
	disallowed                   // a pre callback disallowed this fast I/O call
)

// preOperations runs the pre callbacks, highest altitude first.
func (op *operation) preOperations() preOutcome {
	outcome := passOn
	major := op.data.Major
	for _, inst := range op.insts {
		reg := inst.Filter.ops[major]
		if reg == nil {
			continue
		}
		if reg.Pre == nil {
			if reg.Post != nil {
				op.posts = append(op.posts, post{inst: inst, fn: reg.Post})
			}
			continue
		}
		st, ctx := reg.Pre(inst, &op.data)
		switch st {
		case PreopSuccessWithCallback, PreopSynchronize:
			if reg.Post != nil {
				op.posts = append(op.posts, post{inst: inst, fn: reg.Post, ctx: ctx})
				if st == PreopSynchronize {
					outcome = passOnSync
				}
			}
		case PreopComplete:
			return completed
		case PreopDisallowFastIO:
			if op.data.FastIO {
				return disallowed
			}
		}
	}
	return outcome
}

// dispatch runs the minifilters around every IRP that reaches a frame
// device on a volume.
func (m *Manager) dispatch(dev *iomgr.Device, irp *iomgr.IRP) iomgr.Status {
	ext := dev.Extension.(*filter.Extension)
	if ext.Role != filter.VolumeRole {
		return filter.PassThrough(dev, irp)
	}
	insts := m.instancesOf(dev)
	if len(insts) == 0 {
		return filter.PassThrough(dev, irp)
	}
	sl := irp.CurrentStackLocation()
	op := &operation{m: m, insts: insts}
	op.posts = op.buf[:0]
	op.data = CallbackData{Major: sl.Major, Minor: sl.Minor, IRP: irp, Params: sl, Buffer: irp.Buffer,
		FileObject: sl.FileObject, Requestor: irp.Requestor}
	outcome := op.preOperations()
	if outcome == completed {
		op.runPosts()
		return irp.Complete(op.data.IOStatus.Status, op.data.IOStatus.Information)
	}
	tracked := sl.Major == iomgr.MajorCreate || sl.Major == iomgr.MajorClose
	if len(op.posts) == 0 && !tracked {
		return filter.PassThrough(dev, irp)
	}
	if outcome == passOnSync {
		iomgr.PassDownAndWait(irp, ext.Lower)
		op.data.IOStatus = irp.IOStatus
		op.runPosts()
		op.trackStreams()
		irp.IOStatus = op.data.IOStatus
		st := irp.IOStatus.Status
		iomgr.CompleteRequest(irp)
		return st
	}
	return iomgr.PassDownWith(irp, ext.Lower, nil, postCompletion, op)
}

// postCompletion runs the post callbacks in the completing goroutine (in
// the completion of the associated IRP when the request travelled in one:
// see iomgr.PassDownWith).
func postCompletion(_ *iomgr.Device, irp *iomgr.IRP, context any) iomgr.Status {
	if irp.PendingReturned {
		irp.MarkPending()
	}
	op := context.(*operation)
	op.data.IOStatus = irp.IOStatus
	op.runPosts()
	op.trackStreams()
	irp.IOStatus = op.data.IOStatus
	return iomgr.StatusSuccess
}

// fastIO runs the minifilters around a fast I/O call; call is the lower
// driver's routine. A pre callback that disallows fast I/O makes the call
// "not possible", so the caller sends an IRP.
func (m *Manager) fastIO(dev *iomgr.Device, data CallbackData, ios *iomgr.IOStatusBlock, call func(lower *iomgr.Device) bool) bool {
	ext := dev.Extension.(*filter.Extension)
	lower := ext.Lower
	insts := m.instancesOf(dev)
	if ext.Role != filter.VolumeRole || len(insts) == 0 {
		return call(lower)
	}
	op := &operation{m: m, insts: insts, data: data}
	op.posts = op.buf[:0]
	op.data.FastIO = true
	switch op.preOperations() {
	case disallowed:
		return false
	case completed:
		op.runPosts()
		*ios = op.data.IOStatus
		return true
	}
	if !call(lower) {
		return false
	}
	op.data.IOStatus = *ios
	op.runPosts()
	*ios = op.data.IOStatus
	return true
}

func (m *Manager) fastRead(dev *iomgr.Device, fo *iomgr.FileObject, off int64, buf []byte, wait bool, ios *iomgr.IOStatusBlock) bool {
	return m.fastTransfer(iomgr.MajorRead, dev, fo, off, buf, wait, ios)
}

func (m *Manager) fastWrite(dev *iomgr.Device, fo *iomgr.FileObject, off int64, buf []byte, wait bool, ios *iomgr.IOStatusBlock) bool {
	return m.fastTransfer(iomgr.MajorWrite, dev, fo, off, buf, wait, ios)
}

// fastTransfer runs the minifilters around a fast I/O read or write, which
// they see as the IRP_MJ_READ or IRP_MJ_WRITE it stands for.
func (m *Manager) fastTransfer(major iomgr.MajorFunction, dev *iomgr.Device, fo *iomgr.FileObject, off int64, buf []byte, wait bool, ios *iomgr.IOStatusBlock) bool {
	sl := &iomgr.StackLocation{Major: major, FileObject: fo}
	sl.SetTransfer(len(buf), off)
	data := CallbackData{Major: major, Params: sl, Buffer: buf, FileObject: fo, Requestor: fo.Requestor}
	return m.fastIO(dev, data, ios, func(l *iomgr.Device) bool {
		fio := l.Driver.FastIO
		if fio == nil {
			return false
		}
		call := fio.Read
		if major == iomgr.MajorWrite {
			call = fio.Write
		}
		return call != nil && call(l, fo, off, buf, wait, ios)
	})
}

func (m *Manager) fastQueryBasic(dev *iomgr.Device, fo *iomgr.FileObject, wait bool, info *iomgr.FileBasicInformation, ios *iomgr.IOStatusBlock) bool {
	sl := &iomgr.StackLocation{Major: iomgr.MajorQueryInformation, FileObject: fo}
	sl.Parameters.QueryFile = iomgr.QueryFileParameters{Class: iomgr.FileBasicInformationClass}
	data := CallbackData{Major: iomgr.MajorQueryInformation, Params: sl, FileObject: fo, Requestor: fo.Requestor}
	return m.fastIO(dev, data, ios, func(l *iomgr.Device) bool {
		fio := l.Driver.FastIO
		return fio != nil && fio.QueryBasicInfo != nil && fio.QueryBasicInfo(l, fo, wait, info, ios)
	})
}

func (m *Manager) fastQueryStandard(dev *iomgr.Device, fo *iomgr.FileObject, wait bool, info *iomgr.FileStandardInformation, ios *iomgr.IOStatusBlock) bool {
	sl := &iomgr.StackLocation{Major: iomgr.MajorQueryInformation, FileObject: fo}
	sl.Parameters.QueryFile = iomgr.QueryFileParameters{Class: iomgr.FileStandardInformationClass}
	data := CallbackData{Major: iomgr.MajorQueryInformation, Params: sl, FileObject: fo, Requestor: fo.Requestor}
	return m.fastIO(dev, data, ios, func(l *iomgr.Device) bool {
		fio := l.Driver.FastIO
		return fio != nil && fio.QueryStandardInfo != nil && fio.QueryStandardInfo(l, fo, wait, info, ios)
	})
}
