package build

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/vdisk-dev/vdisk/build/confuse"
	"github.com/vdisk-dev/vdisk/partition"
)

// Config is a genimage configuration, read and checked: what vdisk build
// makes from it.
type Config struct {
	// File is the configuration file as named.
	File string
	// Images in the order of the configuration, then the implicit file
	// images partitions refer to, in the order of first reference.
	Images []*Image
	// Settings are the config section's options by name.
	Settings map[string]Setting
	// Warnings are things genimage would have done that vdisk does not
	// (options naming tools vdisk does not run).
	Warnings []string

	shortcuts map[string]shortcut // gpt-shortcuts, by lower-cased name
	byFile    map[string]*Image
}

// Setting is one option of the config section.
type Setting struct {
	Value string
	Pos   confuse.Pos
}

type shortcut struct {
	guid string
	pos  confuse.Pos
}

// Size is an image's size option: bytes, a percentage of its content (as
// genimage computes it), or vdisk's "auto" (the smallest that holds the
// content).
type Size struct {
	Bytes   int64
	Percent bool // Bytes holds the percentage
	Auto    bool
	Set     bool
	Pos     confuse.Pos
}

// Image is one image section, or an implicit file image: the file a
// partition names that no image section describes.
type Image struct {
	// File is the section's title: the output's name, relative to the
	// output path (the temporary path for a temporary image) unless
	// absolute; for a file image, the input's name too.
	File string
	Pos  confuse.Pos
	// Type is hdimage, vfat or file.
	Type string
	// Implicit is set for a file image no section describes.
	Implicit bool

	Name       string
	Size       Size
	Mountpoint string // without its leading "/"; "" is the root
	Srcpath    string
	Empty      bool
	Temporary  bool
	ExecPre    string
	ExecPost   string

	// Partitions of an hdimage, in the order of the configuration.
	Partitions []*Partition
	HD         *HDImage
	VFAT       *VFAT
	FileImage  *FileImage
	// Holes are ranges of a file image that hold nothing worth keeping.
	Holes []Hole
}

// HDImage is an hdimage section.
type HDImage struct {
	Pos               confuse.Pos
	Align             int64
	TableType         string // none, mbr, gpt or hybrid
	ExtendedPartition int
	DiskSignature     string // "" unset, "random", or a number
	DiskSignaturePos  confuse.Pos
	DiskUUID          string
	DiskUUIDPos       confuse.Pos
	GPTLocation       int64
	GPTLocationPos    confuse.Pos
	GPTNoBackup       bool
	Fill              bool
}

// VFAT is a vfat section.
type VFAT struct {
	Pos       confuse.Pos
	ExtraArgs string
	ExtraPos  confuse.Pos
	Label     string
	LabelPos  confuse.Pos
	// Files are the file sections and the files list, in that order, as
	// genimage adds them.
	Files []*VFATFile
}

// VFATFile is one file put into a vfat image: Target is its path in the
// volume ("" for the files list: the input's own name, in the root).
type VFATFile struct {
	Target string
	Image  string
	Pos    confuse.Pos
}

// FileImage is a file section: an input taken as it is.
type FileImage struct {
	Name string // the input's name when it differs from the image's
	Copy bool   // copy it into the output path (default)
}

// Partition is a partition section of an hdimage.
type Partition struct {
	Name string
	Pos  confuse.Pos

	Offset, Size, Align, ImageOffset int64
	// PartitionType is the MBR system ID (0: none given).
	PartitionType    byte
	PartitionTypePos confuse.Pos

	Bootable, ForcedPrimary, ReadOnly, Hidden, NoAutomount bool
	Fill, Sparse, Autoresize, InPartitionTable             bool

	Image    string
	ImagePos confuse.Pos
	Holes    []Hole

	PartitionUUID        string
	PartitionUUIDPos     confuse.Pos
	PartitionTypeUUID    string // as given: a GUID or a shortcut
	PartitionTypeUUIDPos confuse.Pos
	HasPartitionTypeUUID bool
}

// LoadOptions tune Load.
type LoadOptions struct {
	// IncludePath is the directories include() searches, before the
	// working directory (genimage's includepath); empty means names are
	// opened as they are.
	IncludePath []string
	// LookupEnv expands ${NAME}; nil means the process environment.
	LookupEnv func(string) (string, bool)
}

// Load reads and checks the configuration file at path.
func Load(path string, opts LoadOptions) (*Config, error) {
	popts := confuse.Options{LookupEnv: opts.LookupEnv}
	if len(opts.IncludePath) > 0 {
		popts.IncludePath = append(slices.Clone(opts.IncludePath), ".")
	}
	nodes, err := confuse.ParseFile(path, popts)
	if err != nil {
		return nil, err
	}
	return FromNodes(path, nodes)
}

// FromNodes checks a parsed configuration.
func FromNodes(file string, nodes []*confuse.Node) (*Config, error) {
	top, err := check(topName, confuse.Pos{File: file, Line: 1}, "", nodes, topSchema, true)
	if err != nil {
		return nil, err
	}
	c := &Config{File: file, Settings: map[string]Setting{}, shortcuts: map[string]shortcut{}, byFile: map[string]*Image{}}
	if cfgs := top.subs["config"]; len(cfgs) > 0 {
		c.readConfigSection(cfgs[0])
	}
	for _, s := range top.subs["image"] {
		img, err := readImage(s)
		if err != nil {
			return nil, err
		}
		c.Images = append(c.Images, img)
		c.byFile[img.File] = img
	}
	// A partition or file naming an image no section describes names an
	// input file: genimage adds an implicit file image for it.
	for _, img := range slices.Clone(c.Images) {
		for _, ref := range img.references() {
			if ref.name == "" {
				continue
			}
			if child, ok := c.byFile[ref.name]; ok {
				if len(ref.holes) > 0 {
					if child.Implicit {
						child.Holes = append(child.Holes, ref.holes...)
						continue
					}
					return nil, configErrorf(ref.pos, "image %q: partition %q: holes belong in the file section of image %q (holes in a partition are only for inputs no section describes)", img.File, ref.part, ref.name)
				}
				continue
			}
			child := &Image{File: ref.name, Pos: ref.pos, Type: "file", Implicit: true,
				FileImage: &FileImage{}, Holes: ref.holes}
			c.Images = append(c.Images, child)
			c.byFile[child.File] = child
		}
	}
	return c, nil
}

// Image returns the image a partition's image option names.
func (c *Config) Image(file string) *Image { return c.byFile[file] }

func (c *Config) readConfigSection(s *section) {
	for name, n := range s.opts {
		v := Setting{Value: n.Values[0].Text, Pos: n.Values[0].Pos}
		if slices.Contains(toolOptions, name) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%v: config option %s = %q is not used: vdisk builds hdimage and vfat images itself and runs no %s", v.Pos, name, v.Value, name))
			continue
		}
		c.Settings[name] = v
	}
	sort.Strings(c.Warnings)
	if g := s.subs["gpt-shortcuts"]; len(g) > 0 {
		for name, n := range g[0].opts {
			c.shortcuts[strings.ToLower(name)] = shortcut{guid: n.Values[0].Text, pos: n.Values[0].Pos}
		}
	}
}

// ref is an image an image refers to: a partition's image, a vfat file.
type ref struct {
	name  string
	part  string
	pos   confuse.Pos
	holes []Hole
}

func (img *Image) references() []ref {
	var refs []ref
	for _, p := range img.Partitions {
		refs = append(refs, ref{name: p.Image, part: p.Name, pos: p.ImagePos, holes: p.Holes})
	}
	if img.VFAT != nil {
		for _, f := range img.VFAT.Files {
			refs = append(refs, ref{name: f.Image, part: f.Target, pos: f.Pos})
		}
	}
	return refs
}

func readImage(s *section) (*Image, error) {
	img := &Image{File: s.title, Pos: s.pos}
	if img.File == "" {
		return nil, configErrorf(s.pos, "an image section needs a file name as its title")
	}
	var types []string
	for _, name := range s.order {
		if _, foreign := foreignTypes[name]; foreign || slices.Contains(builtTypes, name) {
			types = append(types, name)
		}
	}
	switch {
	case len(types) == 0:
		return nil, configErrorf(s.pos, "image %q: no image type given (vdisk builds %s)", img.File, strings.Join(builtTypes, ", "))
	case len(types) > 1:
		return nil, configErrorf(s.pos, "image %q: more than one image type given (%s)", img.File, strings.Join(types, ", "))
	}
	img.Type = types[0]
	typeSec := s.subs[img.Type][0]
	if tool, foreign := foreignTypes[img.Type]; foreign {
		return nil, configErrorf(typeSec.pos, "image %q: vdisk does not build %s images: build %s with %s, put it in the input path (or name it by an absolute path) and delete this image section; a partition's image = %q then copies it in as it is",
			img.File, img.Type, filepath.Base(img.File), tool, img.File)
	}
	img.Name, _, _ = s.str("name")
	img.Mountpoint, _, _ = s.str("mountpoint")
	img.Mountpoint = strings.TrimPrefix(img.Mountpoint, "/")
	img.Srcpath, _, _ = s.str("srcpath")
	if img.Srcpath != "" && img.Mountpoint != "" {
		_, pos, _ := s.str("srcpath")
		return nil, configErrorf(pos, "image %q: srcpath and mountpoint cannot both be given", img.File)
	}
	img.Empty = s.boolean("empty", false)
	img.Temporary = s.boolean("temporary", false)
	img.ExecPre, _, _ = s.str("exec-pre")
	img.ExecPost, _, _ = s.str("exec-post")
	if v, pos, ok := s.str("size"); ok {
		img.Size = Size{Set: true, Pos: pos}
		if strings.EqualFold(v, "auto") {
			img.Size.Auto = true
		} else {
			n, pct, err := parseSize(v, true)
			if err != nil {
				return nil, configErrorf(pos, "image %q: %v", img.File, err)
			}
			img.Size.Bytes, img.Size.Percent = n, pct
		}
	}
	if v, pos, ok := s.str("flashtype"); ok {
		return nil, configErrorf(pos, "image %q: flashtype %q: flash types are for flash, jffs2, ubi and ubifs images, which vdisk does not build", img.File, v)
	}
	for _, ps := range s.subs["partition"] {
		if img.Type != "hdimage" {
			return nil, configErrorf(ps.pos, "image %q: a %s image has no partition sections%s", img.File, img.Type, vfatHint(img.Type))
		}
		p, err := readPartition(img, ps)
		if err != nil {
			return nil, err
		}
		img.Partitions = append(img.Partitions, p)
	}
	var err error
	switch img.Type {
	case "hdimage":
		img.HD, err = readHDImage(img, typeSec)
	case "vfat":
		img.VFAT, err = readVFAT(img, typeSec)
	case "file":
		img.FileImage = &FileImage{Copy: typeSec.boolean("copy", true)}
		img.FileImage.Name, _, _ = typeSec.str("name")
		for _, h := range typeSec.lists["holes"] {
			hole, herr := parseHole(h.Text)
			if herr != nil {
				return nil, configErrorf(h.Pos, "image %q: %v", img.File, herr)
			}
			img.Holes = append(img.Holes, hole)
		}
	}
	return img, err
}

// filledFromRoot reports whether an image takes content from the root
// path (genimage's collect_mountpoints): not an empty one, not an hdimage,
// not one with a srcpath, and not a file image unless a command runs
// before or after it (genimage's file_parse).
func (img *Image) filledFromRoot() bool {
	switch {
	case img.Empty || img.Srcpath != "" || img.Type == "hdimage":
		return false
	case img.Type == "file":
		return img.ExecPre != "" || img.ExecPost != ""
	}
	return true
}

func vfatHint(typ string) string {
	if typ == "vfat" {
		return ": add files with file NAME { image = ... } or files = { ... }"
	}
	return ""
}

func readPartition(img *Image, s *section) (*Partition, error) {
	p := &Partition{Name: s.title, Pos: s.pos}
	var err error
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"offset", &p.Offset}, {"size", &p.Size}, {"align", &p.Align}, {"imageoffset", &p.ImageOffset}} {
		if *f.dst, err = s.size(f.name); err != nil {
			return nil, err
		}
	}
	if t, pos := s.integer("partition-type"); t != 0 {
		if t < 0 || t > 0xff {
			return nil, configErrorf(pos, "image %q: partition %q: partition-type %#x is not a byte (0x01 to 0xff)", img.File, p.Name, t)
		}
		p.PartitionType, p.PartitionTypePos = byte(t), pos
	}
	p.Bootable = s.boolean("bootable", false)
	p.ForcedPrimary = s.boolean("forced-primary", false)
	p.ReadOnly = s.boolean("read-only", false)
	p.Hidden = s.boolean("hidden", false)
	p.NoAutomount = s.boolean("no-automount", false)
	p.Fill = s.boolean("fill", false)
	p.Sparse = s.boolean("sparse", true)
	p.Autoresize = s.boolean("autoresize", false)
	p.InPartitionTable = s.boolean("in-partition-table", true)
	p.Image, p.ImagePos, _ = s.str("image")
	p.PartitionUUID, p.PartitionUUIDPos, _ = s.str("partition-uuid")
	p.PartitionTypeUUID, p.PartitionTypeUUIDPos, p.HasPartitionTypeUUID = s.str("partition-type-uuid")
	for _, h := range s.lists["holes"] {
		hole, err := parseHole(h.Text)
		if err != nil {
			return nil, configErrorf(h.Pos, "image %q: partition %q: %v", img.File, p.Name, err)
		}
		p.Holes = append(p.Holes, hole)
	}
	if p.Image == "" && !p.InPartitionTable && p.Sparse {
		return nil, configErrorf(p.Pos, "image %q: partition %q: no image given (a partition outside the table needs one, or sparse = false to be zeroed)", img.File, p.Name)
	}
	return p, nil
}

func readHDImage(img *Image, s *section) (*HDImage, error) {
	hd := &HDImage{Pos: s.pos, TableType: "mbr"}
	var err error
	if hd.Align, err = s.size("align"); err != nil {
		return nil, err
	}
	if v, pos, ok := s.str("gpt-location"); ok {
		hd.GPTLocationPos = pos
		if hd.GPTLocation, _, err = parseSize(v, false); err != nil {
			return nil, configErrorf(pos, "image %q: gpt-location: %v", img.File, err)
		}
	}
	ext, pos := s.integer("extended-partition")
	if ext < 0 || ext > 4 {
		return nil, configErrorf(pos, "image %q: extended-partition %d: want the MBR slot 1 to 4, or 0 to choose", img.File, ext)
	}
	hd.ExtendedPartition = int(ext)
	if v, pos, ok := s.str("partition-table-type"); ok {
		switch v {
		case "none", "mbr", "gpt", "hybrid":
			hd.TableType = v
		case "dos":
			hd.TableType = "mbr"
		default:
			return nil, configErrorf(pos, "image %q: partition-table-type %q: want none, mbr, gpt or hybrid", img.File, v)
		}
	}
	// The deprecated booleans override partition-table-type, as in genimage.
	if s.has("partition-table") {
		hd.TableType = map[bool]string{true: "mbr", false: "none"}[s.boolean("partition-table", false)]
	}
	if s.has("gpt") {
		hd.TableType = map[bool]string{true: "gpt", false: "mbr"}[s.boolean("gpt", false)]
	}
	hd.DiskSignature, hd.DiskSignaturePos, _ = s.str("disk-signature")
	hd.DiskUUID, hd.DiskUUIDPos, _ = s.str("disk-uuid")
	hd.GPTNoBackup = s.boolean("gpt-no-backup", false)
	hd.Fill = s.boolean("fill", false)
	return hd, nil
}

func readVFAT(img *Image, s *section) (*VFAT, error) {
	v := &VFAT{Pos: s.pos}
	v.ExtraArgs, v.ExtraPos, _ = s.str("extraargs")
	v.Label, v.LabelPos, _ = s.str("label")
	for _, fs := range s.subs["file"] {
		src, pos, ok := fs.str("image")
		if !ok || src == "" {
			return nil, configErrorf(fs.pos, "image %q: file %q: no image given (file NAME { image = \"INPUT\" })", img.File, fs.title)
		}
		v.Files = append(v.Files, &VFATFile{Target: fs.title, Image: src, Pos: pos})
	}
	for _, f := range s.lists["files"] {
		v.Files = append(v.Files, &VFATFile{Image: f.Text, Pos: f.Pos})
	}
	return v, nil
}

// gptType resolves a partition-type-uuid: a GUID, one of the config
// section's gpt-shortcuts, or one of genimage's names.
func (c *Config) gptType(img *Image, p *Partition) (partition.GUID, error) {
	v := p.PartitionTypeUUID
	if !p.HasPartitionTypeUUID {
		v = "L"
	}
	if validUUID(v) {
		g, err := partition.ParseGUID(v)
		return g, err
	}
	if s, ok := c.shortcuts[strings.ToLower(v)]; ok {
		if !validUUID(s.guid) {
			return partition.GUID{}, configErrorf(s.pos, "gpt-shortcuts: %q is not a UUID", s.guid)
		}
		return partition.ParseGUID(s.guid)
	}
	if g, ok := partition.GPTTypeByName(v); ok {
		return g, nil
	}
	return partition.GUID{}, configErrorf(p.PartitionTypeUUIDPos, "image %q: partition %q: partition-type-uuid %q is neither a UUID nor a known name (L, U, esp, linux, root-x86-64, ... or one of the config section's gpt-shortcuts)", img.File, p.Name, v)
}
