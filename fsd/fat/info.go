package fat

import (
	"bytes"
	"strings"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat/internal/ondisk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// File system attributes of FileFsAttributeInformation. Values are NT's.
const (
	fileCasePreservedNames = 0x00000002
	fileUnicodeOnDisk      = 0x00000004
	fileReadOnlyVolume     = 0x00080000
)

// queryInformation handles IRP_MJ_QUERY_INFORMATION: the IRP's
// SystemBuffer points to the iomgr structure of the class.
func (v *vcb) queryInformation(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	fo := sl.FileObject
	f, c := fileContext(fo)
	if c == nil {
		if _, isVol := fo.FsContext.(*vcb); isVol {
			if pos, ok := irp.SystemBuffer.(*iomgr.FilePositionInformation); ok {
				*pos = iomgr.FilePositionInformation{}
				return iomgr.StatusSuccess, 0
			}
		}
		return iomgr.StatusInvalidParameter, 0
	}
	if !v.rlock() {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.RUnlock()
	switch sl.Parameters.QueryFile.Class {
	case iomgr.FileBasicInformationClass:
		b, ok := irp.SystemBuffer.(*iomgr.FileBasicInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		*b = v.basicInfo(f)
	case iomgr.FileStandardInformationClass:
		s, ok := irp.SystemBuffer.(*iomgr.FileStandardInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		*s = v.standardInfo(f)
	case iomgr.FileInternalInformationClass:
		in, ok := irp.SystemBuffer.(*iomgr.FileInternalInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		*in = iomgr.FileInternalInformation{IndexNumber: v.indexNumber(f)}
	case iomgr.FileNameInformationClass:
		n, ok := irp.SystemBuffer.(*iomgr.FileNameInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		*n = iomgr.FileNameInformation{FileName: f.path()}
	case iomgr.FilePositionInformationClass:
		pos, ok := irp.SystemBuffer.(*iomgr.FilePositionInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		*pos = iomgr.FilePositionInformation{CurrentByteOffset: c.position()}
	case iomgr.FileAllInformationClass:
		a, ok := irp.SystemBuffer.(*iomgr.FileAllInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		*a = iomgr.FileAllInformation{
			Basic:    v.basicInfo(f),
			Standard: v.standardInfo(f),
			Internal: iomgr.FileInternalInformation{IndexNumber: v.indexNumber(f)},
			Position: iomgr.FilePositionInformation{CurrentByteOffset: c.position()},
			Name:     iomgr.FileNameInformation{FileName: f.path()},
		}
	default:
		return iomgr.StatusInvalidInfoClass, 0
	}
	return iomgr.StatusSuccess, 0
}

func (v *vcb) basicInfo(f *fcb) iomgr.FileBasicInformation {
	if f.de == nil {
		return iomgr.FileBasicInformation{FileAttributes: iomgr.FileAttributeDirectory}
	}
	s := &f.de.short
	return iomgr.FileBasicInformation{
		CreationTime:   s.Created(v.loc),
		LastAccessTime: s.Accessed(v.loc),
		LastWriteTime:  s.Modified(v.loc),
		ChangeTime:     s.Modified(v.loc),
		FileAttributes: attributes(s),
	}
}

func (v *vcb) standardInfo(f *fcb) iomgr.FileStandardInformation {
	return iomgr.FileStandardInformation{
		AllocationSize: f.allocBytes(),
		EndOfFile:      int64(f.size()),
		NumberOfLinks:  1,
		DeletePending:  f.deletePending,
		Directory:      f.isDir,
	}
}

// indexNumber is the volume offset of the file's directory entry (of the
// root directory for the root), unique on the volume as FastFAT's is.
func (v *vcb) indexNumber(f *fcb) int64 {
	if f.isRoot || f.parent == nil || f.de == nil {
		if v.geo.Type == ondisk.FAT32 {
			return v.geo.ClusterOffset(v.geo.RootCluster)
		}
		return v.geo.RootDirOffset()
	}
	d := f.parent
	off := int64(f.de.slot) * ondisk.DirEntrySize
	if d.isRoot && v.geo.Type != ondisk.FAT32 {
		return v.geo.RootDirOffset() + off
	}
	cs := int64(v.geo.ClusterSize)
	if off/cs >= int64(d.ext.total) {
		return 0
	}
	lcn, _ := d.ext.lookup(uint32(off / cs))
	return v.geo.ClusterOffset(lcn) + off%cs
}

// setInformation handles IRP_MJ_SET_INFORMATION.
func (v *vcb) setInformation(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	f, c := fileContext(sl.FileObject)
	if f == nil || c == nil {
		return iomgr.StatusInvalidParameter, 0
	}
	class := sl.Parameters.SetFile.Class
	if class == iomgr.FilePositionInformationClass {
		pos, ok := irp.SystemBuffer.(*iomgr.FilePositionInformation)
		if !ok || pos.CurrentByteOffset < 0 {
			return iomgr.StatusInvalidParameter, 0
		}
		c.setPosition(pos.CurrentByteOffset)
		return iomgr.StatusSuccess, 0
	}
	if st := v.refuseWrite(); st != iomgr.StatusSuccess {
		return st, 0
	}
	if !v.lock(irp.Requestor) {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.Unlock()
	if f.deleted {
		return iomgr.StatusFileDeleted, 0
	}
	var st iomgr.Status
	switch class {
	case iomgr.FileBasicInformationClass:
		b, ok := irp.SystemBuffer.(*iomgr.FileBasicInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		st = v.setBasic(f, c, b)
	case iomgr.FileEndOfFileInformationClass:
		e, ok := irp.SystemBuffer.(*iomgr.FileEndOfFileInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		st = v.setEndOfFile(f, c, e.EndOfFile)
	case iomgr.FileAllocationInformationClass:
		a, ok := irp.SystemBuffer.(*iomgr.FileAllocationInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		st = v.setAllocation(f, c, a.AllocationSize)
	case iomgr.FileDispositionInformationClass:
		d, ok := irp.SystemBuffer.(*iomgr.FileDispositionInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		st = v.setDisposition(sl.FileObject, f, c, d.DeleteFile, irp.RequestorMode == iomgr.KernelMode)
	case iomgr.FileRenameInformationClass:
		r, ok := irp.SystemBuffer.(*iomgr.FileRenameInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		st = statusOf(v.rename(f, c, r, sl.Parameters.SetFile))
	default:
		return iomgr.StatusInvalidInfoClass, 0
	}
	if !st.IsSuccess() {
		return st, 0
	}
	return statusOf(v.deferCommit()), 0
}

func (v *vcb) setBasic(f *fcb, c *ccb, b *iomgr.FileBasicInformation) iomgr.Status {
	if c.access&(iomgr.FileWriteAttributes|iomgr.FileWriteData) == 0 {
		return iomgr.StatusAccessDenied
	}
	if f.de == nil {
		return iomgr.StatusSuccess // the root directory has no entry to change
	}
	s := &f.de.short
	set := func(t time.Time, fn func(time.Time, *time.Location)) {
		if !t.IsZero() {
			fn(t, v.loc)
		}
	}
	set(b.CreationTime, s.SetCreated)
	set(b.LastWriteTime, s.SetModified)
	set(b.LastAccessTime, s.SetAccessed)
	if a := b.FileAttributes; a != 0 {
		if a&iomgr.FileAttributeDirectory != 0 && !f.isDir {
			return iomgr.StatusInvalidParameter
		}
		keep := s.Attr &^ attrMask
		s.Attr = keep | ondisk.Attr(a)&attrMask
		if a == iomgr.FileAttributeNormal {
			s.Attr = keep
		}
	}
	v.writeEntry(f.parent, f.de)
	return iomgr.StatusSuccess
}

func (v *vcb) setEndOfFile(f *fcb, c *ccb, size int64) iomgr.Status {
	switch {
	case f.isDir:
		return iomgr.StatusInvalidParameter
	case c.access&iomgr.FileWriteData == 0:
		return iomgr.StatusAccessDenied
	case size < 0:
		return iomgr.StatusInvalidParameter
	}
	if err := v.truncateTo(f, size); err != nil {
		return statusOf(err)
	}
	f.de.short.SetModified(v.fs.opts.Now(), v.loc)
	f.de.short.Attr |= ondisk.AttrArchive
	v.writeEntry(f.parent, f.de)
	return iomgr.StatusSuccess
}

func (v *vcb) setAllocation(f *fcb, c *ccb, alloc int64) iomgr.Status {
	switch {
	case f.isDir:
		return iomgr.StatusInvalidParameter
	case c.access&iomgr.FileWriteData == 0:
		return iomgr.StatusAccessDenied
	case alloc < 0:
		return iomgr.StatusInvalidParameter
	}
	cs := int64(v.geo.ClusterSize)
	if alloc > ondisk.MaxFileSize+cs {
		return iomgr.StatusDiskFull
	}
	if alloc < int64(f.size()) {
		if err := v.truncateTo(f, alloc); err != nil {
			return statusOf(err)
		}
	}
	// Clusters past the end are given back when the last handle closes.
	return statusOf(v.setClusters(f, uint32((alloc+cs-1)/cs)))
}

// setDisposition marks the file for deletion at cleanup. The handle must
// have DELETE access unless a driver asks for itself (kernel mode): a
// filter removing a file it refused to let be written, as NT's I/O manager
// checks access only for user-mode requests.
func (v *vcb) setDisposition(fo *iomgr.FileObject, f *fcb, c *ccb, del, kernel bool) iomgr.Status {
	if !del {
		f.deletePending = false
		fo.DeletePending = false
		return iomgr.StatusSuccess
	}
	switch {
	case c.access&iomgr.Delete == 0 && !kernel:
		return iomgr.StatusAccessDenied
	case f.isRoot:
		return iomgr.StatusCannotDelete
	case f.de.short.Attr&ondisk.AttrReadOnly != 0:
		return iomgr.StatusCannotDelete
	}
	if f.isDir {
		if err := v.loadDir(f); err != nil {
			return statusOf(err)
		}
		if len(f.dir.order) > 0 {
			return iomgr.StatusDirectoryNotEmpty
		}
	}
	f.deletePending = true
	fo.DeletePending = true
	return iomgr.StatusSuccess
}

// rename handles FileRenameInformation: a new name in the same directory,
// or a move to another one (the target directory opened with
// SL_OPEN_TARGET_DIRECTORY, RootDirectory, or a path from the root).
func (v *vcb) rename(f *fcb, c *ccb, r *iomgr.FileRenameInformation, p iomgr.SetFileParameters) error {
	switch {
	case c.access&iomgr.Delete == 0:
		return fail(iomgr.StatusAccessDenied, "renaming needs DELETE access")
	case f.isRoot:
		return fail(iomgr.StatusInvalidParameter, "the root directory cannot be renamed")
	}
	replace := r.ReplaceIfExists || p.ReplaceIfExists
	name := r.FileName
	var target *fcb
	switch {
	case p.FileObject != nil:
		tf, tc := fileContext(p.FileObject)
		if tf == nil || tf.vol != v || !tf.isDir {
			return fail(iomgr.StatusInvalidParameter, "the rename target is not a directory of this volume")
		}
		target = tf
		if i := strings.LastIndexByte(name, '\\'); i >= 0 {
			name = name[i+1:]
		} else if name == "" && tc != nil {
			name = tc.targetName
		}
	case r.RootDirectory != nil:
		tf, _ := fileContext(r.RootDirectory)
		if tf == nil || tf.vol != v || !tf.isDir {
			return fail(iomgr.StatusInvalidParameter, "the rename root directory is not a directory of this volume")
		}
		d, last, err := v.walkParent(tf, name)
		if err != nil {
			return err
		}
		target, name = d, last
	case strings.HasPrefix(name, `\`):
		d, last, err := v.walkParent(v.root, name[1:])
		if err != nil {
			return err
		}
		target, name = d, last
	default:
		if strings.Contains(name, `\`) {
			return fail(iomgr.StatusObjectNameInvalid, "%q", name)
		}
		target = f.parent
	}
	name, err := ondisk.CleanLongName(name)
	if err != nil {
		return err
	}
	if target.deleted || target.deletePending {
		return fail(iomgr.StatusDeletePending, "the target directory is being deleted")
	}
	if f.isDir {
		for a := target; a != nil; a = a.parent {
			if a == f {
				return fail(iomgr.StatusInvalidParameter, "a directory cannot move into itself")
			}
		}
	}
	if err := v.loadDir(target); err != nil {
		return err
	}
	if f.isDir && target != f.parent {
		// Its ".." entry will change: have the directory in memory first.
		if err := v.loadDir(f); err != nil {
			return err
		}
	}
	src, old := f.parent, f.de
	tx := target.dir
	t := tx.lookup(name)
	if t == old {
		t = nil
	}
	if t != nil {
		switch {
		case !replace:
			return fail(iomgr.StatusObjectNameCollision, "%s exists", target.childPath(name))
		case t.short.IsDir(), t.fcb != nil && t.fcb.opens > 0, t.short.Attr&ondisk.AttrReadOnly != 0:
			return fail(iomgr.StatusAccessDenied, "%s cannot be replaced", target.childPath(name))
		}
	}
	if t == nil && target == src && old.display == name {
		return nil // nothing changes
	}
	// The short name: the entry's own, and the one of the file it
	// replaces, do not count as taken.
	taken := func(e *dirEntry, ok bool) bool { return ok && e != old && e != t }
	exists := func(sn ondisk.ShortName) bool {
		e1, ok1 := tx.shorts[sn]
		e2, ok2 := tx.byName[ondisk.FoldKey(sn.String())]
		return taken(e1, ok1) || taken(e2, ok2)
	}
	sn, cf, lfn, err := ondisk.GenerateShortName(name, exists)
	if err != nil {
		return err
	}
	long := ""
	if lfn {
		long = name
	}
	k := 1 + ondisk.LongNameSlots(long)
	// Check the room before changing anything (slots the old entry and a
	// replaced one give back are not counted: the check is conservative).
	grow, err := v.growNeed(target, k)
	if err != nil {
		// A directory that cannot grow (the fixed root, or 65536 entries)
		// still has room if the replaced entry, or the old one in the same
		// directory, gives back enough consecutive slots.
		if !(t != nil && t.slots() >= k || target == src && old.slots() >= k) {
			return err
		}
		grow = 0
	}
	if v.fat.FreeCount() < grow {
		return fail(iomgr.StatusDiskFull, "%d free clusters, the directory needs %d", v.fat.FreeCount(), grow)
	}
	if t != nil {
		if err := v.deleteEntry(target, t); err != nil {
			return err
		}
	}
	se := old.short
	se.Name = sn
	se.SetCase(cf)
	// The old entry goes first, so a rename within a directory may reuse
	// its slots.
	v.removeEntry(src, old)
	undo := func() {
		src.dir.slots.Use(old.first, old.slots())
		src.dir.insert(old)
		v.writeDirSlots(src, old)
	}
	if grow, err = v.growNeed(target, k); err == nil && grow > 0 {
		err = v.growDir(target, grow)
	}
	if err != nil {
		undo()
		return err
	}
	de, err := v.addEntry(target, long, se)
	if err != nil {
		undo()
		return err
	}
	de.fcb = f
	f.de = de
	if target != src {
		src.children--
		target.children++
		f.parent = target
		if f.isDir && f.dir.dotdot != nil {
			dd := f.dir.dotdot
			dd.short.FirstCluster = parentCluster(target)
			v.writeEntry(f, dd)
		}
	}
	return nil
}

// writeDirSlots re-encodes an entry (long name and short entry) into its
// slots, to undo a removeEntry.
func (v *vcb) writeDirSlots(d *fcb, de *dirEntry) {
	buf, err := ondisk.AppendEntries(nil, de.long, &de.short)
	if err != nil || len(buf)/ondisk.DirEntrySize != de.slots() {
		v.writeEntry(d, de)
		return
	}
	off := de.first * ondisk.DirEntrySize
	copy(d.dir.data[off:], buf)
	v.markDirty(d, off, off+len(buf))
}

// walkParent resolves path (relative to d, components separated by `\`)
// to the directory of its last component, which it returns with that
// component.
func (v *vcb) walkParent(d *fcb, path string) (*fcb, string, error) {
	comps := strings.Split(path, `\`)
	for _, comp := range comps[:len(comps)-1] {
		comp, err := ondisk.CleanLongName(comp)
		if err != nil {
			return nil, "", err
		}
		if err := v.loadDir(d); err != nil {
			return nil, "", err
		}
		de := d.dir.lookup(comp)
		if de == nil || !de.short.IsDir() {
			return nil, "", fail(iomgr.StatusObjectPathNotFound, "%s", d.childPath(comp))
		}
		if d, err = v.fcbFor(d, de); err != nil {
			return nil, "", err
		}
	}
	return d, comps[len(comps)-1], nil
}

// deleteEntry deletes the (closed) file of entry de from directory d.
func (v *vcb) deleteEntry(d *fcb, de *dirEntry) error {
	if start := de.short.StartCluster(v.geo.Type); start != 0 && de.fcb == nil {
		// Its chain must not be part of a chain in use (cross-linked):
		// freeing it would hand out clusters of another file.
		exts, err := v.fat.Chain(start)
		if err != nil {
			return v.note(err)
		}
		if err := v.claim(exts); err != nil {
			return err
		}
		v.unclaim(exts)
		if _, err := v.fat.FreeChain(start); err != nil {
			return v.note(err)
		}
	} else if start != 0 {
		if _, err := v.fat.FreeChain(start); err != nil {
			return v.note(err)
		}
	}
	if de.fcb != nil {
		f := de.fcb
		v.unlink(f)
		f.deleted = true
	}
	v.removeEntry(d, de)
	return nil
}

// deleteFile deletes an open file or directory whose last handle was
// cleaned up with a delete pending. A directory that is not empty (a file
// was created in it since) is kept.
func (v *vcb) deleteFile(f *fcb) error {
	if f.isRoot || f.deleted || f.de == nil {
		return nil
	}
	if f.isDir {
		if err := v.loadDir(f); err != nil {
			return err
		}
		if len(f.dir.order) > 0 {
			f.deletePending = false
			return fail(iomgr.StatusDirectoryNotEmpty, "%s", f.path())
		}
	}
	if f.start != 0 {
		if _, err := v.fat.FreeChain(f.start); err != nil {
			return v.note(err)
		}
	}
	d, de := f.parent, f.de
	v.unlink(f)
	f.deleted = true
	f.dir = nil
	v.removeEntry(d, de)
	return nil
}

// queryVolumeInformation handles IRP_MJ_QUERY_VOLUME_INFORMATION.
func (v *vcb) queryVolumeInformation(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	if !v.rlock() {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.RUnlock()
	g := &v.geo
	switch sl.Parameters.QueryVolume.Class {
	case iomgr.FileFsVolumeInformationClass:
		out, ok := irp.SystemBuffer.(*iomgr.FileFsVolumeInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		*out = iomgr.FileFsVolumeInformation{VolumeSerialNumber: v.serial, VolumeLabel: v.label}
	case iomgr.FileFsSizeInformationClass, iomgr.FileFsFullSizeInformationClass:
		out, ok := irp.SystemBuffer.(*iomgr.FileFsSizeInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		*out = iomgr.FileFsSizeInformation{
			TotalAllocationUnits:     int64(g.MaxCluster - 1),
			AvailableAllocationUnits: int64(v.fat.FreeCount()),
			SectorsPerAllocationUnit: g.SectorsPerCluster,
			BytesPerSector:           g.BytesPerSector,
		}
	case iomgr.FileFsAttributeInformationClass:
		out, ok := irp.SystemBuffer.(*iomgr.FileFsAttributeInformation)
		if !ok {
			return iomgr.StatusInvalidParameter, 0
		}
		attrs := uint32(fileCasePreservedNames | fileUnicodeOnDisk)
		if v.readOnly {
			attrs |= fileReadOnlyVolume
		}
		name := "FAT"
		if g.Type == ondisk.FAT32 {
			name = "FAT32"
		}
		*out = iomgr.FileFsAttributeInformation{FileSystemAttributes: attrs, MaximumComponentNameLength: ondisk.MaxLongNameLen, FileSystemName: name}
	default:
		return iomgr.StatusInvalidInfoClass, 0
	}
	return iomgr.StatusSuccess, 0
}

// setVolumeInformation handles IRP_MJ_SET_VOLUME_INFORMATION: the label,
// written to the root directory's label entry and the boot sector (and its
// FAT32 backup), and recorded in the VPB.
func (v *vcb) setVolumeInformation(irp *iomgr.IRP) (iomgr.Status, uint64) {
	sl := irp.CurrentStackLocation()
	if sl.Parameters.SetVolume.Class != iomgr.FileFsLabelInformationClass {
		return iomgr.StatusInvalidInfoClass, 0
	}
	in, ok := irp.SystemBuffer.(*iomgr.FileFsLabelInformation)
	if !ok {
		return iomgr.StatusInvalidParameter, 0
	}
	if st := v.refuseWrite(); st != iomgr.StatusSuccess {
		return st, 0
	}
	raw, err := ondisk.EncodeVolumeLabel(in.VolumeLabel, v.cp)
	if err != nil {
		return iomgr.StatusInvalidParameter, 0
	}
	if !v.lock(irp.Requestor) {
		return iomgr.StatusVolumeDismounted, 0
	}
	defer v.mu.Unlock()
	return statusOf(v.setLabel(in.VolumeLabel, raw)), 0
}

func (v *vcb) setLabel(label string, raw [11]byte) error {
	root := v.root
	x := root.dir
	empty := label == ""
	switch {
	case x.label != nil && empty:
		v.removeEntry(root, x.label)
		x.label = nil
	case x.label != nil:
		x.label.short.Name = ondisk.ShortName(raw)
		x.label.short.SetModified(v.fs.opts.Now(), v.loc)
		v.writeEntry(root, x.label)
	case !empty:
		grow, err := v.growNeed(root, 1)
		if err != nil {
			return err
		}
		if v.fat.FreeCount() < grow {
			return fail(iomgr.StatusDiskFull, "no room for the label entry")
		}
		if grow > 0 {
			if err := v.growDir(root, grow); err != nil {
				return err
			}
		}
		se := ondisk.ShortEntry{Name: ondisk.ShortName(raw), Attr: ondisk.AttrVolumeID}
		se.SetModified(v.fs.opts.Now(), v.loc)
		de, err := v.addEntry(root, "", se)
		if err != nil {
			return err
		}
		// The label is not a name: take it out of the name index again.
		x.remove(de)
		x.label = de
	}
	if err := v.commit(); err != nil {
		return err
	}
	if v.bs.BootSignature == 0x29 {
		bpb := raw
		if empty {
			copy(bpb[:], "NO NAME    ")
		}
		bs := *v.bs
		bs.VolumeLabel = bpb
		if err := v.writeBootSector(&bs); err != nil {
			return err
		}
	}
	v.label = ondisk.FormatVolumeLabel(raw, v.cp)
	v.VPB.SetLabel(v.label)
	return nil
}

// writeBootSector writes changed boot sector fields to the boot sector
// and, on FAT32, its backup (keeping the backup's own dirty flag alone).
func (v *vcb) writeBootSector(bs *ondisk.BootSector) error {
	if err := v.ensureDirty(); err != nil {
		return err
	}
	b := bytes.Clone(v.boot)
	dirty := ondisk.BootSectorDirty(b)
	bs.NTFlags = b[bootNTFlagsOffset(b)]
	if err := bs.Encode(b); err != nil {
		return err
	}
	ondisk.SetBootSectorDirty(b, dirty)
	if err := v.meta.transfer(iomgr.MajorWrite, ioReq{rq: v.rq}, b, 0); err != nil {
		return err
	}
	v.boot, v.bs = b, bs
	if s := v.geo.BackupBootSector; s != 0 {
		off := int64(s) * int64(v.geo.BytesPerSector)
		bb := make([]byte, v.geo.BytesPerSector)
		if err := v.meta.transfer(iomgr.MajorRead, ioReq{rq: v.rq}, bb, off); err != nil {
			return err
		}
		if old, err := ondisk.ParseBootSector(bb); err == nil {
			nb := *bs
			nb.NTFlags = old.NTFlags
			if err := nb.Encode(bb); err != nil {
				return err
			}
			if err := v.meta.transfer(iomgr.MajorWrite, ioReq{rq: v.rq}, bb, off); err != nil {
				return err
			}
		}
	}
	return nil
}

// bootNTFlagsOffset is the offset of the NT flags byte in a raw boot
// sector (0x25 on FAT12/16, 0x41 on FAT32).
func bootNTFlagsOffset(b []byte) int {
	if b[22] == 0 && b[23] == 0 {
		return 0x41
	}
	return 0x25
}
