// Package build is vdisk's image builder, a drop-in for genimage (the tool
// Buildroot, PTXdist and Yocto describe SD-card and disk images with): it
// reads a genimage configuration and makes the hdimage, vfat and file
// images it describes, with vdisk's own partition tables and FAT file
// system rather than genimage's mkdosfs and mcopy runs.
//
// It is a front end, above the root package (DESIGN.md's layers): the
// configuration language is package confuse, the tables package partition,
// the FAT volumes the root's System with the FAT driver (fsd/fat) mounted
// on an image of their own. The steps are:
//
//   - Load: parse, then check against genimage's schema (schema.go); an
//     unknown option, a type vdisk does not build or a value out of place
//     is a *ConfigError naming the file and line;
//   - NewPlan: resolve genimage's settings (command line, config section,
//     GENIMAGE_* environment, defaults), then size and lay out every
//     image in genimage's order (layout.go has the rules), drawing the
//     identities the configuration leaves open (ids.go);
//   - Plan.Build: write each image into a temporary file and rename it
//     into place.
//
// Reproducibility: with a seed (vdisk's --seed or SOURCE_DATE_EPOCH) every
// identity the configuration leaves open is a name-based GUID of the image
// and partition names; with genimage's randomseed they are what genimage
// draws. Directory contents are written in name order.
//
// A Plan is used by one goroutine; the package holds no locks.
package build
