package iomgr

import "fmt"

// fsdRequest fills the first stack location of a read, write, flush or
// shutdown IRP for dev.
func fsdRequest(major MajorFunction, dev *Device, buf []byte, offset int64) *IRP {
	switch major {
	case MajorRead, MajorWrite, MajorFlushBuffers, MajorShutdown:
	default:
		panic(fmt.Sprintf("iomgr: an FSD request cannot be %v", major))
	}
	irp := AllocateIRP(dev.StackSize)
	sl := irp.NextStackLocation()
	sl.Major = major
	switch major {
	case MajorRead:
		irp.Flags |= IRPReadOperation
	case MajorWrite:
		irp.Flags |= IRPWriteOperation
	default:
		return irp
	}
	irp.Buffer = buf
	p := sl.Transfer()
	p.Length, p.ByteOffset = uint32(len(buf)), offset
	return irp
}

// BuildSynchronousFSDRequest returns an IRP for a read, write, flush or
// shutdown of dev (IoBuildSynchronousFsdRequest). buf is the caller's memory,
// used in place. Send it with CallDriverAndWait, then FreeIRP it.
func BuildSynchronousFSDRequest(major MajorFunction, dev *Device, buf []byte, offset int64) *IRP {
	irp := fsdRequest(major, dev, buf, offset)
	irp.synchronous = true
	return irp
}

// BuildAsynchronousFSDRequest returns an IRP for a read, write, flush or
// shutdown of dev with nobody waiting for it (IoBuildAsynchronousFsdRequest).
// The caller sets a completion routine (SetCompletionRoutine) that consumes
// the result, frees the IRP and returns StatusMoreProcessingRequired, then
// sends it with CallDriver.
func BuildAsynchronousFSDRequest(major MajorFunction, dev *Device, buf []byte, offset int64) *IRP {
	return fsdRequest(major, dev, buf, offset)
}

// BuildDeviceIoControlRequest returns a synchronous I/O control request for
// dev (IoBuildDeviceIoControlRequest): input is the request's argument, output
// (usually a pointer to the result structure) becomes the IRP's
// SystemBuffer. internal selects IRP_MJ_INTERNAL_DEVICE_CONTROL. Send it with
// CallDriverAndWait, then FreeIRP it.
func BuildDeviceIoControlRequest(code uint32, dev *Device, input, output any, internal bool) *IRP {
	irp := AllocateIRP(dev.StackSize)
	irp.synchronous = true
	irp.SystemBuffer = output
	sl := irp.NextStackLocation()
	sl.Major = MajorDeviceControl
	if internal {
		sl.Major = MajorInternalDeviceControl
	}
	sl.Parameters.DeviceIoControl = ControlParameters{ControlCode: code, Input: input}
	return irp
}

// BuildSynchronousRequest returns an empty synchronous IRP for dev whose first
// stack location the caller fills in (for creates, queries, file system
// controls). Send it with CallDriverAndWait, then FreeIRP it.
func BuildSynchronousRequest(major MajorFunction, minor MinorFunction, dev *Device) *IRP {
	irp := AllocateIRP(dev.StackSize)
	irp.synchronous = true
	sl := irp.NextStackLocation()
	sl.Major = major
	sl.Minor = minor
	return irp
}

// Synchronous reports whether the IRP was made by a synchronous builder,
// i.e. an originator waits for it.
func (irp *IRP) Synchronous() bool { return irp.synchronous }
