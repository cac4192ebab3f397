package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/build"
)

// buildSettings are genimage's settings that `vdisk build` takes as flags,
// with the environment variable genimage reads each from.
var buildSettings = []struct{ name, env, usage string }{
	{"inputpath", "GENIMAGE_INPUTPATH", "directory the images partitions and files name are read from (default input)"},
	{"outputpath", "GENIMAGE_OUTPUTPATH", "directory the images are written to (default images)"},
	{"rootpath", "GENIMAGE_ROOTPATH", "root file system tree vfat images are filled from, at their mountpoint (default root)"},
	{"tmppath", "GENIMAGE_TMPPATH", "directory for images marked temporary (default tmp)"},
	{"includepath", "GENIMAGE_INCLUDEPATH", "colon-separated directories include() searches before the working directory"},
	{"loglevel", "GENIMAGE_LOGLEVEL", "0 errors only, 1 one line per image, 2 one per partition (default 1)"},
	{"randomseed", "GENIMAGE_RANDOMSEED", "genimage's seed: identities left open are the ones genimage draws from it"},
}

func buildCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "the configuration file (GENIMAGE_CONFIG; default genimage.cfg)"},
	}
	for _, s := range buildSettings {
		flags = append(flags, &cli.StringFlag{Name: s.name, Usage: s.usage + " (" + s.env + ")"})
	}
	return withUsage(&cli.Command{
		Name:      "build",
		Usage:     "build the images a genimage configuration describes",
		ArgsUsage: "[CONFIG]",
		Description: `vdisk build reads genimage's configuration language and flags (so a script can call it
as genimage) and builds hdimage (MBR, GPT, hybrid or no table), vfat and file images with
vdisk's own partition tables and FAT driver. Other image types (ext4, squashfs, ...) are
refused with the tool to build them with: build those first and let partitions name the
files. Settings come from the flags, else the configuration's config section, else the
GENIMAGE_* variables, else genimage's defaults.

Examples:
   vdisk build genimage.cfg --rootpath rootfs --inputpath output/images --outputpath output/images
   SOURCE_DATE_EPOCH=1700000000 vdisk build sdcard.cfg`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			cfg := c.String("config")
			switch {
			case c.NArg() > 1:
				return usagef("build: want at most one CONFIG, got %d arguments", c.NArg())
			case c.NArg() == 1 && c.IsSet("config"):
				return usagef("build: the configuration is given twice: as %q and as --config %q", c.Args().First(), cfg)
			case c.NArg() == 1:
				cfg = c.Args().First()
			case !c.IsSet("config"):
				cfg = "genimage.cfg"
				if v, ok := os.LookupEnv("GENIMAGE_CONFIG"); ok {
					cfg = v
				}
			}
			opts := &build.Options{Flags: map[string]string{}, Log: os.Stderr}
			for _, s := range buildSettings {
				if c.IsSet(s.name) {
					opts.Flags[s.name] = c.String(s.name)
				}
			}
			opts.Repro = reproducible
			conf, err := build.Load(cfg, build.LoadOptions{IncludePath: opts.IncludePath()})
			if err != nil {
				return err
			}
			for _, w := range conf.Warnings {
				fmt.Fprintf(os.Stderr, "vdisk: warning: %s\n", w)
			}
			plan, err := build.NewPlan(conf, opts)
			if err != nil {
				return err
			}
			return plan.Build()
		},
	})
}
