// Command vdisk creates, inspects and serves disk images through a
// user-space model of the Windows NT storage stack. docs/CLI.md in the
// repository is the command-line contract; docs/DESIGN.md the map of the
// code.
//
// It is the top layer: every command is a thin client of the packages
// below. Operands are parsed here (address.go: IMAGE@N:/path against the
// host's files), the command's System opened and closed in session.go,
// one command per file.
//
// Offline commands (create, info, ls, cat, cp, mkdir, rm, mv, label,
// format, stack IMAGE) open their images in a System of their own for the
// length of the command; serve runs the NBD server and, with --control,
// the control API, which mount, dismount, lock, unlock, monitor, filter
// and stack --control drive; attach and detach hand an export to the
// Linux kernel's NBD driver. Exit status 2 is a usage error, 1 any other.
package main
