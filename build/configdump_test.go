package build

// genimage --configdump prints the configuration as libconfuse read it:
// includes done, ${VAR} expanded, every option with its value or default.
// TestConfigDumpMatchesGenimage reads every configuration of genimage's
// suite both ways and compares each option: the parser (package confuse)
// and the schema with its defaults (schema.go, config.go) against
// libconfuse and genimage.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vdisk-dev/vdisk/build/confuse"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
)

// dumpGetters give a model's value of each option genimage dumps, as text
// in the option's kind: sizes as bytes, booleans true/false.
var (
	imageGetters = map[string]func(*Image) string{
		"name": func(i *Image) string { return i.Name }, "mountpoint": func(i *Image) string { return i.Mountpoint },
		"srcpath": func(i *Image) string { return i.Srcpath }, "empty": func(i *Image) string { return fmt.Sprint(i.Empty) },
		"temporary": func(i *Image) string { return fmt.Sprint(i.Temporary) },
		"exec-pre":  func(i *Image) string { return i.ExecPre }, "exec-post": func(i *Image) string { return i.ExecPost },
		"size": func(i *Image) string {
			if i.Size.Percent {
				return fmt.Sprintf("%d%%", i.Size.Bytes)
			}
			return fmt.Sprint(i.Size.Bytes)
		},
	}
	hdGetters = map[string]func(*HDImage) string{
		"align": func(h *HDImage) string { return fmt.Sprint(h.Align) }, "disk-signature": func(h *HDImage) string { return h.DiskSignature },
		"disk-uuid": func(h *HDImage) string { return h.DiskUUID }, "extended-partition": func(h *HDImage) string { return fmt.Sprint(h.ExtendedPartition) },
		"partition-table-type": func(h *HDImage) string { return h.TableType },
		"gpt-location":         func(h *HDImage) string { return fmt.Sprint(h.GPTLocation) },
		"gpt-no-backup":        func(h *HDImage) string { return fmt.Sprint(h.GPTNoBackup) }, "fill": func(h *HDImage) string { return fmt.Sprint(h.Fill) },
	}
	partGetters = map[string]func(*Partition) string{
		"offset": func(p *Partition) string { return fmt.Sprint(p.Offset) }, "size": func(p *Partition) string { return fmt.Sprint(p.Size) },
		"align": func(p *Partition) string { return fmt.Sprint(p.Align) }, "imageoffset": func(p *Partition) string { return fmt.Sprint(p.ImageOffset) },
		"partition-type": func(p *Partition) string { return fmt.Sprint(p.PartitionType) },
		"bootable":       func(p *Partition) string { return fmt.Sprint(p.Bootable) }, "forced-primary": func(p *Partition) string { return fmt.Sprint(p.ForcedPrimary) },
		"read-only": func(p *Partition) string { return fmt.Sprint(p.ReadOnly) }, "hidden": func(p *Partition) string { return fmt.Sprint(p.Hidden) },
		"no-automount": func(p *Partition) string { return fmt.Sprint(p.NoAutomount) }, "fill": func(p *Partition) string { return fmt.Sprint(p.Fill) },
		"sparse": func(p *Partition) string { return fmt.Sprint(p.Sparse) }, "autoresize": func(p *Partition) string { return fmt.Sprint(p.Autoresize) },
		"in-partition-table": func(p *Partition) string { return fmt.Sprint(p.InPartitionTable) },
		"image":              func(p *Partition) string { return p.Image }, "partition-uuid": func(p *Partition) string { return p.PartitionUUID },
		"partition-type-uuid": func(p *Partition) string { return p.PartitionTypeUUID },
		"holes":               func(p *Partition) string { return fmt.Sprint(p.Holes) },
	}
	fileGetters = map[string]func(*Image) string{
		"name": func(i *Image) string { return i.FileImage.Name }, "copy": func(i *Image) string { return fmt.Sprint(i.FileImage.Copy) },
		"holes": func(i *Image) string { return fmt.Sprint(i.Holes) },
	}
	vfatGetters = map[string]func(*VFAT) string{
		"extraargs": func(v *VFAT) string { return v.ExtraArgs }, "label": func(v *VFAT) string { return v.Label },
		"files": func(v *VFAT) string {
			var fs []string
			for _, f := range v.Files {
				if f.Target == "" {
					fs = append(fs, f.Image)
				}
			}
			return fmt.Sprint(fs)
		},
	}
)

// normalize turns a dumped value into the model's text for option name.
func normalize(name string, n *confuse.Node) string {
	if n.List {
		var vs []string
		for _, v := range n.Values {
			vs = append(vs, v.Text)
		}
		if name == "holes" {
			var hs []Hole
			for _, v := range vs {
				h, _ := parseHole(v)
				hs = append(hs, h)
			}
			return fmt.Sprint(hs)
		}
		return fmt.Sprint(vs)
	}
	v := n.Values[0].Text
	switch name {
	case "size", "offset", "align", "imageoffset", "gpt-location":
		b, pct, err := parseSize(v, true)
		if err != nil {
			return "unparsable " + v
		}
		if pct {
			return fmt.Sprintf("%d%%", b)
		}
		return fmt.Sprint(b)
	case "mountpoint":
		return strings.TrimPrefix(v, "/")
	case "partition-type", "extended-partition":
		i, _ := parseInt(v)
		return fmt.Sprint(i)
	}
	return v
}

func compareSection[T any](t *testing.T, where string, dump []*confuse.Node, model T, getters map[string]func(T) string) {
	t.Helper()
	for _, n := range dump {
		if n.Kind != confuse.Option {
			continue
		}
		get, ok := getters[n.Name]
		if !ok {
			t.Errorf("%s: genimage dumps option %q, which the comparison does not know", where, n.Name)
			continue
		}
		if want, got := normalize(n.Name, n), get(model); want != got {
			t.Errorf("%s: %s: genimage read %q, vdisk %q", where, n.Name, want, got)
		}
	}
}

func sections(nodes []*confuse.Node, name string) []*confuse.Node {
	var out []*confuse.Node
	for _, n := range nodes {
		if n.Kind == confuse.Section && n.Name == name {
			out = append(out, n)
		}
	}
	return out
}

func TestConfigDumpMatchesGenimage(t *testing.T) {
	genimage := testsupport.NeedTool(t, "genimage")
	suite := testsupport.GenimageDir(t)
	configs, _ := filepath.Glob(filepath.Join(suite, "*.config"))
	compared := 0
	for _, cfg := range configs {
		name := filepath.Base(cfg)
		conf, err := Load(cfg, LoadOptions{LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			continue // an image type vdisk does not build: checked by TestSchemaErrors
		}
		dir := t.TempDir()
		dump := filepath.Join(dir, "dump")
		cmd := exec.Command(genimage, "--configdump", dump, "--config", cfg, "--outputpath", filepath.Join(dir, "o"),
			"--inputpath", filepath.Join(dir, "i"), "--rootpath", filepath.Join(dir, "r"), "--tmppath", filepath.Join(dir, "t"))
		cmd.Dir, cmd.Env = suite, filteredEnv("GPT_LOCATION", "OFFSET")
		_ = cmd.Run() // genimage fails later, setting the images up without their inputs; the dump comes first
		data, err := os.ReadFile(dump)
		if err != nil || len(data) == 0 {
			t.Logf("%s: genimage 16 does not read it (an option newer than genimage 16)", name)
			continue
		}
		nodes, err := confuse.Parse(dump, data, confuse.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatalf("%s: the dump does not parse: %v\n%s", name, err, data)
		}
		images := sections(nodes, "image")
		for _, img := range conf.Images {
			if img.Implicit {
				continue
			}
			var d *confuse.Node
			for _, s := range images {
				if s.Title == img.File {
					d = s
				}
			}
			if d == nil {
				t.Errorf("%s: genimage dumps no image %q", name, img.File)
				continue
			}
			where := name + ": image " + img.File
			compareSection(t, where, d.Body, img, imageGetters)
			parts := sections(d.Body, "partition")
			if len(parts) != len(img.Partitions) {
				t.Errorf("%s: %d partitions, genimage %d", where, len(img.Partitions), len(parts))
				continue
			}
			for i, p := range img.Partitions {
				if parts[i].Title != p.Name {
					t.Errorf("%s: partition %d is %q, genimage's %q", where, i, p.Name, parts[i].Title)
				}
				compareSection(t, where+": partition "+p.Name, parts[i].Body, p, partGetters)
			}
			switch img.Type {
			case "hdimage":
				hd := sections(d.Body, "hdimage")[0].Body
				var kept []*confuse.Node
				for _, n := range hd { // the deprecated booleans are folded into the table type
					if n.Name != "partition-table" && n.Name != "gpt" {
						kept = append(kept, n)
					}
				}
				compareSection(t, where+": hdimage", kept, img.HD, hdGetters)
			case "vfat":
				v := sections(d.Body, "vfat")[0].Body
				compareSection(t, where+": vfat", v, img.VFAT, vfatGetters)
				files := sections(v, "file")
				var targets []string
				for _, f := range img.VFAT.Files {
					if f.Target != "" {
						targets = append(targets, f.Target+"="+f.Image)
					}
				}
				var want []string
				for _, f := range files {
					want = append(want, f.Title+"="+f.Body[0].Values[0].Text)
				}
				if strings.Join(want, ",") != strings.Join(targets, ",") {
					t.Errorf("%s: files %v, genimage %v", where, targets, want)
				}
			case "file":
				compareSection(t, where+": file", sections(d.Body, "file")[0].Body, img, fileGetters)
			}
		}
		compared++
	}
	if compared < 20 {
		t.Errorf("only %d configurations compared", compared)
	}
	t.Logf("%d configurations read alike by vdisk and genimage %s", compared, strconv.Quote(genimage))
}
