// Command vdisk creates, inspects and serves disk images through a
// user-space model of the Windows NT storage stack. See CLI.md for the
// command-line contract.
//
// It is the top layer: every command is a thin client of package vdisk.
// Offline commands (create, info, ls, cat, cp, mkdir, rm, mv, label,
// format, stack IMAGE) open their images in a System of their own for the
// length of the command; serve runs the NBD server and, with --control,
// the control API, which mount, dismount, lock, unlock, monitor, filter
// and stack --control drive; attach and detach hand an export to the
// Linux kernel's NBD driver. Exit status 2 is a usage error, 1 any other.
package main
