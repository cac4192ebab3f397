package fat

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// File rights GenericAll maps to (FILE_ALL_ACCESS), and GENERIC_EXECUTE.
const (
	fileAllAccess  iomgr.AccessMask = 0x001F01FF
	genericExecute iomgr.AccessMask = 0x20000000
)

// mapAccess maps the generic rights of a create to file rights.
func mapAccess(a iomgr.AccessMask) iomgr.AccessMask {
	if a&iomgr.GenericRead != 0 {
		a |= iomgr.FileGenericRead
	}
	if a&iomgr.GenericWrite != 0 {
		a |= iomgr.FileGenericWrite
	}
	if a&genericExecute != 0 {
		a |= iomgr.FileExecute | iomgr.FileReadAttributes | iomgr.Synchronize
	}
	if a&iomgr.GenericAll != 0 {
		a |= fileAllAccess
	}
	return a &^ (iomgr.GenericRead | iomgr.GenericWrite | iomgr.GenericAll | genericExecute)
}

// fileContext returns a file object's FCB and CCB (nil for volume opens and
// file objects the driver did not open).
func fileContext(fo *iomgr.FileObject) (*fcb, *ccb) {
	if fo == nil {
		return nil, nil
	}
	f, _ := fo.FsContext.(*fcb)
	c, _ := fo.FsContext2.(*ccb)
	return f, c
}

// attrMask is what a caller may set of the attribute byte.
const attrMask = ondisk.AttrReadOnly | ondisk.AttrHidden | ondisk.AttrSystem | ondisk.AttrArchive

// create handles IRP_MJ_CREATE: open or create a file or directory, the
// root directory (`\`) or the volume itself ("").
func (v *vcb) create(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	fo := sl.FileObject
	if fo == nil {
		return iomgr.StatusInvalidParameter, 0
	}
	p := sl.Parameters.Create
	opts := p.Options
	if opts&iomgr.FileDirectoryFile != 0 && opts&iomgr.FileNonDirectoryFile != 0 || p.Disposition > iomgr.FileOverwriteIf {
		return iomgr.StatusInvalidParameter, 0
	}
	if opts&iomgr.FileOpenByFileID != 0 {
		return iomgr.StatusNotImplemented, 0
	}
	access := mapAccess(p.DesiredAccess)
	c := &ccb{
		access: access,
		mode: shareMode{
			read:        access&(iomgr.FileReadData|iomgr.FileExecute) != 0,
			write:       access&(iomgr.FileWriteData|iomgr.FileAppendData) != 0,
			del:         access&iomgr.Delete != 0,
			shareRead:   p.ShareAccess&iomgr.ShareRead != 0,
			shareWrite:  p.ShareAccess&iomgr.ShareWrite != 0,
			shareDelete: p.ShareAccess&iomgr.ShareDelete != 0,
		},
		deleteOnClose: opts&iomgr.FileDeleteOnClose != 0,
		next:          -2,
	}
	if c.deleteOnClose {
		// Deleting on close is a delete: it needs (and is granted) DELETE.
		c.mode.del = true
		c.access |= iomgr.Delete
	}
	c.counted = c.mode
	if !v.lock(irp.Requestor) {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.Unlock()

	name, related := fo.FileName, fo.RelatedFileObject
	if name == "" && (related == nil || related.FsContext == any(v)) {
		return v.openVolume(fo, c)
	}
	base := v.root
	if related != nil {
		rf, _ := fileContext(related)
		switch {
		case rf == nil:
		case rf.vol != v || !rf.isDir:
			return iomgr.StatusInvalidParameter, 0
		case rf.deleted:
			return iomgr.StatusDeletePending, 0
		default:
			base = rf
		}
		if strings.HasPrefix(name, `\`) {
			return iomgr.StatusObjectNameInvalid, 0
		}
	} else if !strings.HasPrefix(name, `\`) {
		return iomgr.StatusObjectNameInvalid, 0
	}
	trailing := len(name) > 1 && strings.HasSuffix(name, `\`)
	rest := strings.TrimSuffix(strings.TrimPrefix(name, `\`), `\`)
	var comps []string
	if rest != "" {
		comps = strings.Split(rest, `\`)
	}
	for i, comp := range comps {
		clean, err := ondisk.CleanLongName(comp)
		if err != nil {
			v.fs.logf("fat: open %q: %v", name, err)
			return iomgr.StatusObjectNameInvalid, 0
		}
		comps[i] = clean
	}
	targetDir := sl.Flags&iomgr.SLOpenTargetDirectory != 0
	if len(comps) == 0 {
		if targetDir {
			return iomgr.StatusInvalidParameter, 0
		}
		return v.openExisting(fo, c, base, p, trailing)
	}
	// Walk to the parent of the last component.
	d := base
	for _, comp := range comps[:len(comps)-1] {
		if err := v.loadDir(d); err != nil {
			return statusOf(err), 0
		}
		de := d.dir.lookup(comp)
		if de == nil || !de.short.IsDir() {
			return iomgr.StatusObjectPathNotFound, 0
		}
		next, err := v.fcbFor(d, de)
		if err != nil {
			return statusOf(err), 0
		}
		d = next
	}
	if err := v.loadDir(d); err != nil {
		return statusOf(err), 0
	}
	last := comps[len(comps)-1]
	de := d.dir.lookup(last)
	if targetDir {
		// Open the parent, for a rename to the named file.
		st, _ := v.openExisting(fo, c, d, iomgr.CreateParameters{Disposition: iomgr.FileOpen, Options: iomgr.FileDirectoryFile}, false)
		if !st.IsSuccess() {
			return st, 0
		}
		c.targetName = last
		if de != nil {
			return iomgr.StatusSuccess, iomgr.FileExists
		}
		return iomgr.StatusSuccess, iomgr.FileDoesNotExist
	}
	if de != nil {
		f, err := v.fcbFor(d, de)
		if err != nil {
			return statusOf(err), 0
		}
		st, info := v.openExisting(fo, c, f, p, trailing)
		if !st.IsSuccess() {
			v.unlinkUnused(f)
		}
		return st, info
	}
	switch p.Disposition {
	case iomgr.FileOpen, iomgr.FileOverwrite:
		return iomgr.StatusObjectNameNotFound, 0
	}
	isDir := opts&iomgr.FileDirectoryFile != 0
	if st := v.refuseWrite(); st != iomgr.StatusSuccess {
		return st, 0
	}
	switch {
	case d.deletePending:
		return iomgr.StatusDeletePending, 0
	case trailing && !isDir:
		return iomgr.StatusObjectNameInvalid, 0
	case isDir && p.Disposition != iomgr.FileCreate && p.Disposition != iomgr.FileOpenIf:
		return iomgr.StatusInvalidParameter, 0
	}
	attr := ondisk.Attr(p.FileAttributes) & (ondisk.AttrReadOnly | ondisk.AttrHidden | ondisk.AttrSystem)
	if isDir {
		attr |= ondisk.AttrDirectory
	} else {
		attr |= ondisk.AttrArchive
	}
	f, err := v.newEntry(d, last, attr)
	if err != nil {
		return statusOf(err), 0
	}
	if p.AllocationSize > 0 && !isDir {
		cs := int64(v.geo.ClusterSize)
		if n := (p.AllocationSize + cs - 1) / cs; n*cs <= ondisk.MaxFileSize+cs {
			if err := v.setClusters(f, uint32(n)); err != nil {
				// The entry stays, empty; the allocation is only a hint.
				v.fs.logf("fat: %s: allocation of %d bytes: %v", f.path(), p.AllocationSize, err)
			}
		}
	}
	if err := v.deferCommit(); err != nil {
		// The entry stays in memory (a later flush writes it); the open
		// failed, so nothing holds the FCB.
		v.unlinkUnused(f)
		return statusOf(err), 0
	}
	v.attach(fo, f, c)
	return iomgr.StatusSuccess, iomgr.FileCreated
}

// unlinkUnused forgets a file FCB no file object holds.
func (v *vcb) unlinkUnused(f *fcb) {
	if f.opens == 0 && !f.isDir {
		v.unlink(f)
	}
}

// openVolume opens the volume itself (a volume open: FSCTLs, the label,
// sector I/O).
func (v *vcb) openVolume(fo *iomgr.FileObject, c *ccb) (iomgr.Status, uint64) {
	if v.readOnly && (c.mode.write || c.mode.del) {
		return iomgr.StatusMediaWriteProtected, 0
	}
	if !v.share.check(c.counted) {
		return iomgr.StatusSharingViolation, 0
	}
	v.share.update(c.counted, 1)
	fo.FsContext, fo.FsContext2 = v, c
	fo.Flags |= iomgr.FOVolumeOpen
	setFileObjectAccess(fo, c)
	return iomgr.StatusSuccess, iomgr.FileOpened
}

// openExisting opens f with the checks NT's FastFAT makes, overwriting or
// superseding it as the disposition says.
func (v *vcb) openExisting(fo *iomgr.FileObject, c *ccb, f *fcb, p iomgr.CreateParameters, trailing bool) (iomgr.Status, uint64) {
	if f.deletePending {
		return iomgr.StatusDeletePending, 0
	}
	disp := p.Disposition
	if disp == iomgr.FileCreate && !f.isRoot {
		return iomgr.StatusObjectNameCollision, 0
	}
	if f.isDir {
		switch {
		case p.Options&iomgr.FileNonDirectoryFile != 0:
			return iomgr.StatusFileIsADirectory, 0
		case disp != iomgr.FileOpen && disp != iomgr.FileOpenIf:
			if f.isRoot {
				return iomgr.StatusAccessDenied, 0
			}
			return iomgr.StatusObjectNameCollision, 0
		case c.deleteOnClose && f.isRoot:
			return iomgr.StatusCannotDelete, 0
		}
	} else {
		switch {
		case p.Options&iomgr.FileDirectoryFile != 0:
			return iomgr.StatusNotADirectory, 0
		case trailing:
			return iomgr.StatusObjectNameInvalid, 0
		}
	}
	overwrite := disp == iomgr.FileSupersede || disp == iomgr.FileOverwrite || disp == iomgr.FileOverwriteIf
	if overwrite {
		// For sharing, overwriting is a write and superseding a delete.
		if disp == iomgr.FileSupersede {
			c.counted.del = true
		} else {
			c.counted.write = true
		}
	}
	if c.mode.write || c.mode.del || overwrite {
		if st := v.refuseWrite(); st != iomgr.StatusSuccess {
			return st, 0
		}
	}
	if f.de != nil {
		ro := f.de.short.Attr&ondisk.AttrReadOnly != 0
		if ro && c.deleteOnClose {
			return iomgr.StatusCannotDelete, 0
		}
		if ro && !f.isDir && (c.mode.write || overwrite) {
			return iomgr.StatusAccessDenied, 0
		}
		if overwrite {
			// NT refuses to overwrite a hidden or system file unless the
			// caller asks for those attributes.
			have := f.de.short.Attr & (ondisk.AttrHidden | ondisk.AttrSystem)
			if have&^ondisk.Attr(p.FileAttributes) != 0 {
				return iomgr.StatusAccessDenied, 0
			}
		}
	}
	if c.deleteOnClose && f.isDir {
		if err := v.loadDir(f); err != nil {
			return statusOf(err), 0
		}
		if len(f.dir.order) > 0 {
			return iomgr.StatusDirectoryNotEmpty, 0
		}
	}
	if !f.share.check(c.counted) {
		return iomgr.StatusSharingViolation, 0
	}
	info := uint64(iomgr.FileOpened)
	if overwrite {
		if err := v.truncateTo(f, 0); err != nil {
			return statusOf(err), 0
		}
		s := &f.de.short
		s.Attr = s.Attr&ondisk.AttrDirectory | ondisk.Attr(p.FileAttributes)&(ondisk.AttrReadOnly|ondisk.AttrHidden|ondisk.AttrSystem) | ondisk.AttrArchive
		now := v.fs.opts.Now()
		s.SetModified(now, v.loc)
		s.SetAccessed(now, v.loc)
		v.writeEntry(f.parent, f.de)
		info = iomgr.FileOverwritten
		if disp == iomgr.FileSupersede {
			info = iomgr.FileSuperseded
		}
	}
	if overwrite {
		if err := v.deferCommit(); err != nil {
			v.unlinkUnused(f)
			return statusOf(err), 0
		}
	}
	v.attach(fo, f, c)
	return iomgr.StatusSuccess, info
}

// attach makes fo an open of f.
func (v *vcb) attach(fo *iomgr.FileObject, f *fcb, c *ccb) {
	c.fcb = f
	f.opens++
	f.handles++
	f.share.update(c.counted, 1)
	fo.FsContext, fo.FsContext2 = f, c
	setFileObjectAccess(fo, c)
	if c.deleteOnClose {
		fo.Flags |= iomgr.FODeleteOnClose
	}
}

func setFileObjectAccess(fo *iomgr.FileObject, c *ccb) {
	fo.ReadAccess, fo.WriteAccess, fo.DeleteAccess = c.mode.read, c.mode.write, c.mode.del
	fo.SharedRead, fo.SharedWrite, fo.SharedDelete = c.mode.shareRead, c.mode.shareWrite, c.mode.shareDelete
}

// parentCluster is what a subdirectory's ".." entry holds for parent d: 0
// for the root directory, on FAT32 too.
func parentCluster(d *fcb) uint32 {
	if d.isRoot {
		return 0
	}
	return d.start
}

// newEntry creates file or directory name (already clean) in directory d
// and returns its FCB. It checks the room it needs first, so a volume too
// full for it is left as it was.
func (v *vcb) newEntry(d *fcb, name string, attr ondisk.Attr) (*fcb, error) {
	x := d.dir
	sn, cf, lfn, err := ondisk.GenerateShortName(name, x.shortExists)
	if err != nil {
		if errors.Is(err, ondisk.ErrNoSpace) {
			return nil, fail(iomgr.StatusCannotMake, "directory %s has no short name left for %q", d.path(), name)
		}
		return nil, err
	}
	long := ""
	if lfn {
		long = name
	}
	k := 1 + ondisk.LongNameSlots(long)
	grow, err := v.growNeed(d, k)
	if err != nil {
		return nil, err
	}
	isDir := attr&ondisk.AttrDirectory != 0
	need := grow
	if isDir {
		need++
	}
	if v.fat.FreeCount() < need {
		return nil, fail(iomgr.StatusDiskFull, "%d free clusters, %s needs %d", v.fat.FreeCount(), d.childPath(name), need)
	}
	if grow > 0 {
		if err := v.growDir(d, grow); err != nil {
			return nil, err
		}
	}
	now := v.fs.opts.Now()
	se := ondisk.ShortEntry{Name: sn, Attr: attr}
	se.SetCase(cf)
	se.SetCreated(now, v.loc)
	se.SetModified(now, v.loc)
	se.SetAccessed(now, v.loc)
	var cluster []ondisk.Extent
	if isDir {
		if cluster, err = v.fat.Allocate(1, 0, 0); err != nil {
			return nil, v.note(err)
		}
		se.FirstCluster = cluster[0].Start
	}
	de, err := v.addEntry(d, long, se)
	if err != nil {
		if isDir {
			_, _ = v.fat.FreeChain(cluster[0].Start)
		}
		return nil, err
	}
	f, err := v.fcbFor(d, de)
	if err != nil {
		return nil, fmt.Errorf("new entry %s: %w", d.childPath(name), err)
	}
	if isDir {
		// The new directory's cluster: zeros, "." and "..", written with
		// the next commit like any directory change.
		data := make([]byte, v.geo.ClusterSize)
		dot, dotdot := ondisk.DotEntries(f.start, parentCluster(d), &se)
		dot.Encode(data)
		dotdot.Encode(data[ondisk.DirEntrySize:])
		f.dir, err = v.buildIndex(f, data, len(data)/ondisk.DirEntrySize)
		if err != nil {
			return nil, err
		}
		v.markDirty(f, 0, len(data))
	}
	return f, nil
}
