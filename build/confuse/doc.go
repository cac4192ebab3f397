// Package confuse reads the configuration language of libconfuse, the
// library genimage parses its configuration files with, into a syntax tree:
// sections (`image sdcard.img { ... }`, `hdimage { ... }`), options
// (`key = value`, lists `key = { "a", "b" }`, appends `key += value`),
// function calls (`include("file")`), comments (`#`, `//`, `/* */`),
// double-quoted strings with C escapes and `${VAR}` / `${VAR:-default}`
// expansion, single-quoted strings without either, and unquoted words.
//
// It is the bottom of the `vdisk build` front end (package build), which
// gives the tree genimage's meaning; this package knows no option names.
// Every node and value carries the file and line it came from, so that the
// layers above can name both in their errors, and every error of this
// package does. Input is untrusted: limits on nesting, include depth and
// total size bound the work any input can cause, and no input panics.
//
// Where libconfuse is lax this package is strict, because a character that
// libconfuse drops silently changes what a configuration means without a
// word: a stray `*` or `+`, an unterminated comment or string, a `${` in the
// middle of an unquoted word and a NUL byte are errors.
//
// The package has no state shared between calls and no locks.
package confuse
