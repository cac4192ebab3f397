package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Options are what a build takes besides its configuration: genimage's
// settings as the command line and the environment give them, and vdisk's
// reproducibility inputs.
type Options struct {
	// Flags are the command line's values of genimage's settings, by name
	// (outputpath, inputpath, rootpath, tmppath, includepath, loglevel,
	// randomseed); a name present with "" was given empty.
	Flags map[string]string
	// LookupEnv reads GENIMAGE_* defaults and ${VAR} in the
	// configuration; nil means the process environment.
	LookupEnv func(string) (string, bool)
	// Repro makes the build reproducible: the identities the
	// configuration leaves open derive from names (see idSource), FAT
	// times are clamped.
	Repro Repro
	// Log receives genimage-style progress lines at LogLevel and above;
	// nil means os.Stderr.
	Log io.Writer
}

// settingDefaults are genimage's defaults, and the environment variables
// that override them.
var settingDefaults = map[string]struct{ def, env string }{
	"loglevel":    {"1", "GENIMAGE_LOGLEVEL"},
	"rootpath":    {"root", "GENIMAGE_ROOTPATH"},
	"tmppath":     {"tmp", "GENIMAGE_TMPPATH"},
	"inputpath":   {"input", "GENIMAGE_INPUTPATH"},
	"outputpath":  {"images", "GENIMAGE_OUTPUTPATH"},
	"includepath": {"", "GENIMAGE_INCLUDEPATH"},
	"randomseed":  {"", "GENIMAGE_RANDOMSEED"},
}

// Setting resolves one of genimage's settings with genimage's precedence:
// the command line, then the configuration's config section, then the
// environment, then the default. c may be nil (before the configuration
// is read: includepath, which the configuration cannot set).
func (o *Options) Setting(c *Config, name string) (string, bool) {
	if v, ok := o.Flags[name]; ok {
		return v, true
	}
	if c != nil {
		if s, ok := c.Settings[name]; ok {
			return s.Value, true
		}
	}
	d := settingDefaults[name]
	if v, ok := o.lookupEnv(d.env); ok {
		return v, true
	}
	return d.def, d.def != ""
}

func (o *Options) lookupEnv(name string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

// IncludePath is genimage's includepath as a list of directories.
func (o *Options) IncludePath() []string {
	v, ok := o.Setting(nil, "includepath")
	if !ok || v == "" {
		return nil
	}
	return strings.Split(v, ":")
}

// Paths are the directories of a build, absolute.
type Paths struct {
	Input, Output, Root, Tmp string
}

// Plan is a configuration ready to build: paths resolved, every image's
// size known and every hdimage laid out, in the order genimage generates
// them.
type Plan struct {
	Config   *Config
	Paths    Paths
	LogLevel int
	// Order is the images in the order they are built: each after the
	// images it holds.
	Order   []*Image
	Layouts map[*Image]*Layout
	Sizes   map[*Image]int64
	// Inputs maps file images to the files they read.
	Inputs map[*Image]string

	opts     *Options
	ids      *idSource
	state    map[*Image]int // 0 new, 1 being set up, 2 done
	contents map[*Image]*tree
	views    map[string]bool // mount views made for exec commands
}

// NewPlan resolves paths and identities and sets every image up, in
// genimage's order: the images of the configuration in turn, each after
// the images its partitions hold.
func NewPlan(c *Config, opts *Options) (*Plan, error) {
	p := &Plan{Config: c, opts: opts, Layouts: map[*Image]*Layout{}, Sizes: map[*Image]int64{},
		Inputs: map[*Image]string{}, state: map[*Image]int{}, contents: map[*Image]*tree{}, ids: &idSource{},
		views: map[string]bool{}}
	for name, dst := range map[string]*string{"inputpath": &p.Paths.Input, "outputpath": &p.Paths.Output,
		"rootpath": &p.Paths.Root, "tmppath": &p.Paths.Tmp} {
		v, _ := opts.Setting(c, name)
		abs, err := filepath.Abs(v)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", name, v, err)
		}
		*dst = abs
	}
	lv, _ := opts.Setting(c, "loglevel")
	n, err := strconv.Atoi(lv)
	if err != nil {
		return nil, fmt.Errorf("loglevel %q is not a number", lv)
	}
	p.LogLevel = n
	if seed, ok := opts.Setting(c, "randomseed"); ok && seed != "" {
		p.ids.prng = newGenimagePRNG(seed)
	}
	p.ids.seeded = opts.Repro.Identities()
	for _, img := range c.Images {
		if err := p.setup(img); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// setup sizes img (and lays it out) after the images it holds.
func (p *Plan) setup(img *Image) error {
	switch p.state[img] {
	case 2:
		return nil
	case 1:
		return configErrorf(img.Pos, "image %q holds itself, through the images its partitions hold", img.File)
	}
	p.state[img] = 1
	for _, r := range img.references() {
		if r.name == "" {
			continue
		}
		child := p.Config.Image(r.name)
		if child == nil {
			return configErrorf(r.pos, "image %q: no image %q", img.File, r.name)
		}
		if err := p.setup(child); err != nil {
			return err
		}
	}
	var err error
	switch img.Type {
	case "file":
		err = p.setupFile(img)
	case "vfat":
		err = p.setupVFAT(img)
	case "hdimage":
		err = p.setupHD(img)
	}
	if err != nil {
		return err
	}
	p.state[img] = 2
	p.Order = append(p.Order, img)
	return nil
}

// OutputPath is where an image is written.
func (p *Plan) OutputPath(img *Image) string {
	if img.Type == "file" && !img.FileImage.Copy {
		return p.Inputs[img]
	}
	if filepath.IsAbs(img.File) {
		return img.File
	}
	if img.Temporary {
		return filepath.Join(p.Paths.Tmp, img.File)
	}
	return filepath.Join(p.Paths.Output, img.File)
}

// setupFile finds a file image's input. An implicit one is read where it
// is; a described one is copied to the output path (unless copy = false),
// as genimage does.
func (p *Plan) setupFile(img *Image) error {
	name := img.File
	if img.FileImage.Name != "" {
		name = img.FileImage.Name
	}
	in := name
	if !filepath.IsAbs(name) {
		in = filepath.Join(p.Paths.Input, name)
	}
	fi, err := os.Stat(in)
	if err != nil {
		what := "input file"
		if img.Implicit {
			what = "input file (no image section describes it, so it is read from the input path)"
		}
		return configErrorf(img.Pos, "image %q: %s %s: %v", img.File, what, in, errors.Unwrap(err))
	}
	p.Inputs[img] = in
	if img.Size.Set && !img.Size.Percent && !img.Size.Auto {
		p.Sizes[img] = img.Size.Bytes
	} else {
		p.Sizes[img] = fi.Size()
	}
	if img.Implicit || fi.Mode().IsRegular() || fi.IsDir() {
		return nil
	}
	return configErrorf(img.Pos, "image %q: input %s is not a regular file", img.File, in)
}

func (p *Plan) setupHD(img *Image) error {
	var size int64
	switch {
	case img.Size.Percent:
		return configErrorf(img.Size.Pos, "image %q: a size in %% is a share of the content of a file system's directory; an hdimage has none (give a size, or none to end the image after its last partition)", img.File)
	case img.Size.Set && !img.Size.Auto:
		size = img.Size.Bytes
	}
	l, err := p.Config.layoutHD(img, size, p.size, p.ids)
	if err != nil {
		return err
	}
	p.Layouts[img] = l
	p.Sizes[img] = l.Size
	return nil
}

func (p *Plan) size(img *Image) (int64, error) {
	s, ok := p.Sizes[img]
	if !ok {
		return 0, configErrorf(img.Pos, "image %q: its size is not known yet", img.File)
	}
	return s, nil
}
