package build

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vdisk-dev/vdisk/build/confuse"
)

// ErrConfig is wrapped by every *ConfigError: the configuration means
// nothing vdisk can build.
var ErrConfig = errors.New("invalid genimage configuration")

// ConfigError is a configuration that parses but cannot be built, with
// where it says so.
type ConfigError struct {
	Pos confuse.Pos
	Msg string
}

func (e *ConfigError) Error() string {
	if e.Pos.File == "" {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrConfig) hold.
func (e *ConfigError) Unwrap() error { return ErrConfig }

func configErrorf(pos confuse.Pos, format string, args ...any) error {
	return &ConfigError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// topName is what errors call the top level.
const topName = "configuration"

// optKind is what an option of genimage's schema holds, as libconfuse
// declares it (CFG_STR, CFG_INT, CFG_BOOL, CFG_STR_LIST, CFG_SEC).
type optKind int

const (
	kString optKind = iota
	kInt
	kBool
	kList
	kSection       // untitled section, at most once
	kTitledMulti   // titled section, any number
	kKeyValSection // untitled section of free keys with string values (gpt-shortcuts)
	kForeign       // a section vdisk does not read (an image type it does not build)
)

type optDef struct {
	kind optKind
	sub  schema
	// includes allows include() in the section, as genimage's schema
	// does at the top level and in image sections.
	includes bool
}

// schema is the options a section may hold.
type schema map[string]optDef

// section is a section checked against its schema: the last value of each
// option (lists accumulated as libconfuse does: = resets, += appends) and
// its subsections in order.
type section struct {
	name   string // what errors call it: `image "sd.img"`, `partition "boot"`
	pos    confuse.Pos
	title  string
	opts   map[string]*confuse.Node
	lists  map[string][]confuse.Value
	subs   map[string][]*section
	order  []string // subsection names in the order first seen
	schema schema
}

// check reads nodes (a section's body) against sch. include() is allowed
// where genimage's schema declares it (the top level and image sections):
// its statements count as the including section's.
func check(name string, pos confuse.Pos, title string, nodes []*confuse.Node, sch schema, includes bool) (*section, error) {
	s := &section{name: name, pos: pos, title: title, opts: map[string]*confuse.Node{},
		lists: map[string][]confuse.Value{}, subs: map[string][]*section{}, schema: sch}
	if err := s.add(nodes, includes); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *section) add(nodes []*confuse.Node, includes bool) error {
	for _, n := range nodes {
		if n.Kind == confuse.Include {
			if !includes {
				return configErrorf(n.Pos, "%s: include() is allowed only at the top level and in image sections", s.name)
			}
			if err := s.add(n.Body, includes); err != nil {
				return err
			}
			continue
		}
		def, ok := s.schema[n.Name]
		if !ok {
			return configErrorf(n.Pos, "%s: unknown option %q%s", s.name, n.Name, s.suggest(n.Name))
		}
		if err := s.addNode(n, def); err != nil {
			return err
		}
	}
	return nil
}

func (s *section) addNode(n *confuse.Node, def optDef) error {
	isSection := def.kind == kSection || def.kind == kTitledMulti || def.kind == kKeyValSection || def.kind == kForeign
	switch {
	case isSection && n.Kind != confuse.Section:
		return configErrorf(n.Pos, "%s: %q is a section: write %s { ... }", s.name, n.Name, n.Name)
	case !isSection && n.Kind == confuse.Section:
		return configErrorf(n.Pos, "%s: %q is an option: write %s = value", s.name, n.Name, n.Name)
	}
	switch def.kind {
	case kString, kInt, kBool:
		if n.List || n.Append {
			return configErrorf(n.Pos, "%s: option %q takes one value, not a list", s.name, n.Name)
		}
		v := n.Values[0]
		if def.kind == kInt {
			if _, err := parseInt(v.Text); err != nil {
				return configErrorf(v.Pos, "%s: option %q: %v", s.name, n.Name, err)
			}
		}
		if def.kind == kBool {
			if _, err := parseBool(v.Text); err != nil {
				return configErrorf(v.Pos, "%s: option %q: %v", s.name, n.Name, err)
			}
		}
		s.opts[n.Name] = n // the last one counts, as in libconfuse
	case kList:
		if n.Append {
			s.lists[n.Name] = append(s.lists[n.Name], n.Values...)
		} else {
			s.lists[n.Name] = append([]confuse.Value{}, n.Values...)
		}
		s.opts[n.Name] = n
	case kSection, kKeyValSection, kForeign:
		if n.HasTitle {
			return configErrorf(n.Pos, "%s: section %q takes no title", s.name, n.Name)
		}
		if prev := s.subs[n.Name]; len(prev) > 0 && def.kind != kForeign {
			return configErrorf(n.Pos, "%s: a second %q section (the first is at line %d)", s.name, n.Name, prev[0].pos.Line)
		}
		sub, err := s.child(n, def)
		if err != nil {
			return err
		}
		s.appendSub(n.Name, sub)
	case kTitledMulti:
		if !n.HasTitle {
			return configErrorf(n.Pos, "%s: section %q needs a title: %s NAME { ... }", s.name, n.Name, n.Name)
		}
		for _, prev := range s.subs[n.Name] {
			if prev.title == n.Title {
				return configErrorf(n.Pos, "%s: a second %s %q (the first is at %v)", s.name, n.Name, n.Title, prev.pos)
			}
		}
		sub, err := s.child(n, def)
		if err != nil {
			return err
		}
		s.appendSub(n.Name, sub)
	}
	return nil
}

func (s *section) appendSub(name string, sub *section) {
	if _, seen := s.subs[name]; !seen {
		s.order = append(s.order, name)
	}
	s.subs[name] = append(s.subs[name], sub)
}

func (s *section) child(n *confuse.Node, def optDef) (*section, error) {
	name := n.Name
	if n.HasTitle {
		name = fmt.Sprintf("%s %q", n.Name, n.Title)
	}
	if s.name != topName {
		name = s.name + ": " + name
	}
	switch def.kind {
	case kForeign:
		return &section{name: name, pos: n.Pos, title: n.Title}, nil
	case kKeyValSection:
		sub := &section{name: name, pos: n.Pos, opts: map[string]*confuse.Node{}}
		for _, c := range n.Body {
			if c.Kind != confuse.Option || c.List || c.Append {
				return nil, configErrorf(c.Pos, "%s: want name = \"value\" lines only", name)
			}
			sub.opts[c.Name] = c
		}
		return sub, nil
	}
	return check(name, n.Pos, n.Title, n.Body, def.sub, def.includes)
}

// suggest names the option closest to a misspelt one, if any is close.
func (s *section) suggest(name string) string {
	best, bestD := "", 3
	for k := range s.schema {
		if d := editDistance(name, k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// str returns a string option's value and whether it was given.
func (s *section) str(name string) (string, confuse.Pos, bool) {
	if n, ok := s.opts[name]; ok {
		return n.Values[0].Text, n.Values[0].Pos, true
	}
	return "", s.pos, false
}

// boolean returns a boolean option (checked when read) or def.
func (s *section) boolean(name string, def bool) bool {
	if n, ok := s.opts[name]; ok {
		b, _ := parseBool(n.Values[0].Text)
		return b
	}
	return def
}

// integer returns an integer option (checked when read) or 0.
func (s *section) integer(name string) (int64, confuse.Pos) {
	if n, ok := s.opts[name]; ok {
		v, _ := parseInt(n.Values[0].Text)
		return v, n.Values[0].Pos
	}
	return 0, s.pos
}

// size returns a size option, 0 when absent.
func (s *section) size(name string) (int64, error) {
	v, pos, ok := s.str(name)
	if !ok {
		return 0, nil
	}
	n, _, err := parseSize(v, false)
	if err != nil {
		return 0, configErrorf(pos, "%s: %s: %v", s.name, name, err)
	}
	return n, nil
}

// has reports whether an option was given.
func (s *section) has(name string) bool {
	_, ok := s.opts[name]
	return ok
}

// genimage's schema (its cfg_opt_t tables): the sections and options of a
// configuration. Image types vdisk does not build are kForeign: their
// sections are not read, and an image of such a type is an error naming
// the tool to build it with.

var partitionSchema = schema{
	"offset": {kind: kString}, "size": {kind: kString}, "align": {kind: kString},
	"partition-type": {kind: kInt}, "bootable": {kind: kBool}, "forced-primary": {kind: kBool},
	"read-only": {kind: kBool}, "hidden": {kind: kBool}, "no-automount": {kind: kBool},
	"fill": {kind: kBool}, "sparse": {kind: kBool}, "image": {kind: kString}, "holes": {kind: kList},
	"imageoffset": {kind: kString}, "autoresize": {kind: kBool}, "in-partition-table": {kind: kBool},
	"partition-uuid": {kind: kString}, "partition-type-uuid": {kind: kString},
}

var hdimageSchema = schema{
	"align": {kind: kString}, "disk-signature": {kind: kString}, "disk-uuid": {kind: kString},
	"partition-table": {kind: kBool}, "extended-partition": {kind: kInt},
	"partition-table-type": {kind: kString}, "gpt": {kind: kBool}, "gpt-location": {kind: kString},
	"gpt-no-backup": {kind: kBool}, "fill": {kind: kBool},
}

var vfatSchema = schema{
	"extraargs": {kind: kString}, "label": {kind: kString}, "files": {kind: kList},
	"file": {kind: kTitledMulti, sub: schema{"image": {kind: kString}}},
}

var fileSchema = schema{
	"name": {kind: kString}, "copy": {kind: kBool}, "holes": {kind: kList},
}

// foreignTypes are genimage's image types that vdisk does not build, with
// the tool that builds what they describe.
var foreignTypes = map[string]string{
	"android-sparse": "img2simg (android-sdk-libsparse-utils)",
	"btrfs":          "mkfs.btrfs --rootdir",
	"cpio":           "cpio",
	"cramfs":         "mkfs.cramfs",
	"custom":         "the command in its exec option",
	"erofs":          "mkfs.erofs",
	"ext2":           "mke2fs -t ext2 -d ROOT (or genext2fs)",
	"ext3":           "mke2fs -t ext3 -d ROOT",
	"ext4":           "mke2fs -t ext4 -d ROOT",
	"f2fs":           "mkfs.f2fs and sload.f2fs",
	"fip":            "fiptool",
	"fit":            "mkimage -f",
	"flash":          "genimage",
	"iso":            "genisoimage or xorriso",
	"jffs2":          "mkfs.jffs2",
	"mdraid":         "mdadm",
	"qemu":           "qemu-img convert",
	"rauc":           "rauc bundle",
	"squashfs":       "mksquashfs",
	"tar":            "tar",
	"ubi":            "ubinize",
	"ubifs":          "mkfs.ubifs",
	"verity":         "veritysetup format",
	"verity-sig":     "genimage",
}

// builtTypes are the image types vdisk builds.
var builtTypes = []string{"hdimage", "vfat", "file"}

var imageSchema = func() schema {
	s := schema{
		"name": {kind: kString}, "size": {kind: kString}, "mountpoint": {kind: kString},
		"srcpath": {kind: kString}, "empty": {kind: kBool}, "temporary": {kind: kBool},
		"exec-pre": {kind: kString}, "exec-post": {kind: kString}, "flashtype": {kind: kString},
		"partition": {kind: kTitledMulti, sub: partitionSchema},
		"hdimage":   {kind: kSection, sub: hdimageSchema},
		"vfat":      {kind: kSection, sub: vfatSchema},
		"file":      {kind: kSection, sub: fileSchema},
	}
	for t := range foreignTypes {
		s[t] = optDef{kind: kForeign}
	}
	return s
}()

// configOptions are the options of the config section: genimage's
// settings, which a command-line flag or a GENIMAGE_* variable may also
// give, and the paths of the tools genimage runs.
var configOptions = []string{"loglevel", "rootpath", "tmppath", "inputpath", "outputpath", "includepath", "randomseed"}

// toolOptions name tools genimage runs; vdisk runs none of them, so they
// are accepted (a configuration written for genimage may set them) and
// reported as unused.
var toolOptions = []string{"cpio", "dd", "debugfs", "e2fsck", "genext2fs", "genisoimage", "mcopy", "mmd",
	"mkcramfs", "mkdosfs", "mke2fs", "mkfserofs", "mkfsjffs2", "mkfsf2fs", "mkfsfbtrfs", "openssl",
	"sloadf2fs", "mkfsubifs", "mksquashfs", "qemu-img", "rauc", "tar", "tune2fs", "ubinize", "mkimage",
	"fiptool", "veritysetup"}

var configSchema = func() schema {
	s := schema{"gpt-shortcuts": {kind: kKeyValSection}}
	for _, o := range slices.Concat(configOptions, toolOptions) {
		s[o] = optDef{kind: kString}
	}
	return s
}()

var flashSchema = schema{
	"pebsize": {kind: kString}, "lebsize": {kind: kString}, "numpebs": {kind: kString},
	"minimum-io-unit-size": {kind: kString}, "vid-header-offset": {kind: kString}, "sub-page-size": {kind: kString},
}

var topSchema = schema{
	"image":  {kind: kTitledMulti, sub: imageSchema, includes: true},
	"flash":  {kind: kTitledMulti, sub: flashSchema},
	"config": {kind: kSection, sub: configSchema},
}
