package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError marks errors that exit with status 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// failures are the errors of a command that went on after each (cp -r):
// run prints each on a line of its own and exits 1.
type failures []error

func (f failures) Error() string {
	msgs := make([]string, len(f))
	for i, e := range f {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

func (f failures) Unwrap() []error { return f }

func main() {
	os.Exit(profiled(func() int { return run(os.Args) }))
}

// profiled runs f, writing a CPU profile to the file named by
// VDISK_CPUPROFILE when it is set: how the benchmarks' commands are
// profiled (go tool pprof vdisk FILE).
func profiled(f func() int) int {
	path := os.Getenv("VDISK_CPUPROFILE")
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vdisk: VDISK_CPUPROFILE: %v\n", err)
		return 1
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		fmt.Fprintf(os.Stderr, "vdisk: VDISK_CPUPROFILE: %v\n", err)
		return 1
	}
	defer pprof.StopCPUProfile()
	return f()
}

func run(args []string) int {
	app := newApp()
	if len(args) > 1 && args[len(args)-1] == "--generate-bash-completion" {
		// The shell asks for completions of a partial command line:
		// urfave/cli answers only when the flag stays last, so it must
		// not be reordered, and a half-typed command is no error.
		return runCompletion(app, args)
	}
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") && app.Command(args[1]) == nil {
		fmt.Fprintf(os.Stderr, "vdisk: unknown command %q (see vdisk --help)\n", args[1])
		return 2
	}
	err := app.Run(interspersed(app, args))
	if err == nil {
		return 0
	}
	var fl failures
	if errors.As(err, &fl) {
		for _, e := range fl {
			fmt.Fprintf(os.Stderr, "vdisk: %v\n", e)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "vdisk: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "vdisk",
		Usage: "disk images through a user-space Windows NT storage stack: create, inspect, serve over NBD",
		Description: `Operands: IMAGE is a disk image file, or a Ceph RBD image rbd:POOL/IMAGE[@SNAP]
(--ceph-conf, --ceph-id); IMAGE@N its partition N; VOLUME:/path a path in a volume
(disk.img@1:/EFI/BOOT, rbd:pool/disk@1:/EFI/BOOT). vdisk COMMAND --help shows a command's options
and examples; vdisk completion bash|zsh|fish prints a shell completion script.

Examples:
   vdisk create disk.img --size 256MiB --part 64MiB:esp:EFI --part rest:fat32:DATA
   vdisk cp -r ./boot/EFI disk.img@1:/
   vdisk ls -l disk.img@1:/EFI/BOOT
   vdisk serve disk.img`,
		Version:         version(),
		HideHelpCommand: true,
		// A slice flag's value is one value: a filter spec's parameters
		// are separated by commas (--filter faults:read-error=0.5,seed=3);
		// repeat the flag for more values.
		DisableSliceFlagSeparator: true,
		// `vdisk ... --generate-bash-completion` lists the words that
		// fit; the scripts of `vdisk completion` call it.
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() prints and chooses the status
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Before: readRepro,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "seed", Usage: "make the images this command writes reproducible, as SOURCE_DATE_EPOCH does (FAT times clamped and in UTC, GUIDs, disk signatures and volume serials derived from this string and the names of what they identify), without a date (times are then 1980-01-01)"},
			&cli.BoolFlag{Name: "sync", Usage: "end cp, mkdir, rm, mv and label with an fsync of the image (by default their writes stop at the page cache, which survives the process but not a machine crash, as with cp and mcopy; create and format always fsync, as mkfs.fat does)"},
			&cli.BoolFlag{Name: "trace", Usage: "print the IRP trace of the command to stderr (monitor and disk trace filters)"},
			&cli.StringSliceFlag{Name: "filter", Usage: "load a filter NAME[:key=value,...] (repeatable): " + strings.Join(builtinNames(), ", ")},
			&cli.StringFlag{Name: "ceph-conf", Usage: "the `FILE` ceph.conf that says how to reach the Ceph cluster of rbd:POOL/IMAGE operands (default: $CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf)"},
			&cli.StringFlag{Name: "ceph-id", Usage: "the Ceph client `NAME` without \"client.\" (default admin); its keyring is found as the configuration says"},
			&cli.BoolFlag{Name: "force-share", Aliases: []string{"U"}, Usage: "open images without locking them, as qemu-img -U does, to read an image that another process (vdisk serve, vdisk cp, qemu) has open for writing; only for commands that do not write the image, and what they read may be changing"},
		},
		Commands: []*cli.Command{createCommand(), infoCommand(), lsCommand(), catCommand(), cpCommand(),
			mkdirCommand(), rmCommand(), mvCommand(), labelCommand(), formatCommand(), completionCommand(), stackCommand(), serveCommand(), mountCommand(), dismountCommand(), lockCommand(), unlockCommand(), monitorCommand(), filterCommand(), attachCommand(), detachCommand(), buildCommand()},
	}
}

// version is the module version vdisk was built as (a tag with go
// install, "(devel)" in a checkout) and, when the build recorded them, the
// revision and whether the tree had changes.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+changes"
			}
		}
	}
	if rev != "" {
		v += " " + rev + modified
	}
	return v
}

func init() {
	// --version only: urfave/cli's default adds -v, which reads like
	// "verbose" to users of serve.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	// Help leaves in one write, so that a reader that stops early
	// (`vdisk build --help | grep -q ...`, as genimage's test suite
	// probes its options, under pipefail) cannot make vdisk die of SIGPIPE
	// halfway through.
	render := cli.HelpPrinter
	cli.HelpPrinter = func(w io.Writer, templ string, data any) {
		var b bytes.Buffer
		render(&b, templ, data)
		_, _ = w.Write(b.Bytes())
	}
}

// interspersed moves a command's flags in front of its positional
// arguments, so that `vdisk create IMAGE --size 64MiB` works as docs/CLI.md
// writes it (urfave/cli stops parsing flags at the first argument).
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var cmd *cli.Command
	at := 1
	for ; at < len(args); at++ {
		if cmd = app.Command(args[at]); cmd != nil {
			break
		}
		if !strings.HasPrefix(args[at], "-") {
			return args
		}
		// A global flag's value is not the command, even when it is
		// spelt like one: `vdisk --filter monitor cp ...`.
		if name := strings.TrimLeft(args[at], "-"); !strings.Contains(name, "=") && globalTakesValue(app, name) {
			at++
		}
	}
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	global := map[string]bool{}
	for _, f := range app.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
			global[n] = true
		}
	}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
			global[n] = false // the command's own flag wins
		}
	}
	var globals, flags, positional []string
	rest := args[at+1:]
	if cmd.SkipFlagParsing {
		// The command reads its own options (format takes mkfs.fat's,
		// whose -h is not help): only global flags move before it, the
		// rest keeps its order.
		for i := 0; i < len(rest); i++ {
			a := rest[i]
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if a == "--" || len(a) < 2 || a[0] != '-' || !global[name] {
				positional = append(positional, a)
				continue
			}
			globals = append(globals, a)
			if !hasValue && takesValue[name] && i+1 < len(rest) {
				i++
				globals = append(globals, rest[i])
			}
		}
		out := append(append(append([]string{}, args[:at]...), globals...), args[at])
		return append(out, positional...)
	}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		dst := &flags
		if global[name] {
			dst = &globals
		}
		*dst = append(*dst, a)
		if !hasValue && takesValue[name] && i+1 < len(rest) {
			i++
			*dst = append(*dst, rest[i])
		}
	}
	out := append([]string{}, args[:at]...)
	out = append(out, globals...)
	out = append(out, args[at])
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// globalTakesValue reports whether name is a global flag with a value.
func globalTakesValue(app *cli.App, name string) bool {
	for _, f := range app.Flags {
		if _, isBool := f.(*cli.BoolFlag); isBool {
			continue
		}
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// withUsage makes every command report flag errors as usage errors, and
// complete only its flags: urfave/cli's default would offer the implicit
// `help` subcommand where an operand belongs, and the shell then would not
// fall back to file names.
func withUsage(c *cli.Command) *cli.Command {
	c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	if len(c.Subcommands) == 0 {
		// urfave/cli would add a `help` (alias `h`) subcommand, which
		// takes an operand of that name: `vdisk cp h disk.img@1:/` printed
		// "No help topic". --help stays, with the template of a command
		// without subcommands.
		c.HideHelpCommand = true
		if c.CustomHelpTemplate == "" {
			c.CustomHelpTemplate = cli.CommandHelpTemplate
		}
	}
	if c.BashComplete == nil && len(c.Subcommands) == 0 {
		c.BashComplete = func(ctx *cli.Context) {
			// The completion scripts pass the word being completed, just
			// before the flag, when it starts with "-" (a flag) or names
			// a volume path (IMAGE@N:/..., IMAGE@).
			n := len(os.Args)
			if n <= 2 {
				return
			}
			switch word := os.Args[n-2]; {
			case strings.HasPrefix(word, "-"):
				cli.DefaultCompleteWithFlags(c)(ctx)
			default:
				completeVolumePath(ctx.App.Writer, word)
			}
		}
	}
	return c
}

// runCompletion answers a shell's completion request: the command names
// and flags that fit, on stdout, and never an error the shell would show.
func runCompletion(app *cli.App, args []string) int {
	// A filter spec, the value of --filter or an operand of filter
	// attach, completes from the built-in filters' registry (the App
	// has no Writer before it runs).
	switch n := len(args); {
	case n >= 4 && args[n-3] == "--filter":
		completeFilterSpec(os.Stdout, args[n-2])
		return 0
	case n >= 4 && args[1] == "filter" && args[2] == "attach" && !strings.HasPrefix(args[n-2], "-"):
		word := args[n-2]
		if n == 4 {
			word = "" // nothing typed yet: args[2] is the command
		}
		completeFilterSpec(os.Stdout, word)
		return 0
	}
	if app.Command(args[1]) == nil && !strings.HasPrefix(args[1], "-") {
		// A half-typed command: offer every command; the shell
		// filters by the prefix.
		args = []string{args[0], "--generate-bash-completion"}
	}
	_ = app.Run(args)
	return 0
}
