package fat

import (
	"time"

	"github.com/vdisk-dev/vdisk/iomgr"
)

// The lazy writer: as NT's cache manager writes a volume's changed
// metadata and file data a moment after they were made rather than with
// every request, a change to the FAT or a directory (a create, a set of
// information, the cleanup of a file) arms a timer, and lazyWriteDelay
// later everything changed is written: file data first, then the FAT,
// then the directories, so that the disk never has an entry pointing at a
// chain the FAT does not hold. FLUSH_BUFFERS, a volume lock, dismount and
// shutdown write everything at once (flushAll); a crash loses at most the
// changes of the last lazyWriteDelay and leaves lost clusters at worst.

// lazyWriteDelay is how long a metadata change may wait in memory.
const lazyWriteDelay = time.Second

// lazyRequestor is the requestor the lazy writer's IRPs carry.
const lazyRequestor = "lazy writer"

// deferCommit has the lazy writer write the metadata changed in memory
// (nothing when nothing changed: closing a file that was only read writes
// nothing).
// The volume is marked dirty on the disk at once, before the first change
// can reach it (that write fails the request, as the commit did).
// Caller holds mu exclusively.
func (v *vcb) deferCommit() error {
	if v.readOnly || !v.fat.HasDirty() && len(v.dirtyDirs) == 0 && !v.hasDirtyData() {
		return nil
	}
	if err := v.ensureDirty(); err != nil {
		return err
	}
	if !v.lazyArmed {
		v.lazyArmed = true
		v.lazyTimer = time.AfterFunc(v.lazyDelay, v.lazyWrite)
	}
	return nil
}

// lazyWrite is the timer's routine: it writes cached file data and the
// changed metadata, unless the volume went away meanwhile.
func (v *vcb) lazyWrite() {
	v.mu.Lock()
	defer v.mu.Unlock()
	// No request waits for this write to report a corrupt volume's
	// surprise: it is logged, as guard does for requests.
	defer func() {
		if r := recover(); r != nil {
			if bc, ok := r.(*iomgr.BugCheck); ok {
				panic(bc)
			}
			v.fs.logf("fat: volume %v: lazy write: internal error: %v", v.Real, r)
		}
	}()
	v.lazyArmed = false
	if v.Dismounted() || v.readOnly {
		return
	}
	v.rq = lazyRequestor
	if err := v.writeChanges(); err != nil {
		v.fs.logf("fat: volume %v: lazy write: %v", v.Real, err)
	}
}

// writeChanges writes the cached file data, then the changed metadata
// (commit): data first, so that no size on the disk covers bytes that are
// not there yet. Caller holds mu exclusively.
func (v *vcb) writeChanges() error {
	if err := v.writeBackAll(ioReq{rq: v.rq}); err != nil {
		return err
	}
	return v.commit()
}

// stopLazyWriter cancels a pending lazy write (everything was written, or
// the volume is going). Caller holds mu exclusively.
func (v *vcb) stopLazyWriter() {
	if v.lazyArmed && v.lazyTimer.Stop() {
		v.lazyArmed = false
	}
}
