package confuse

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrSyntax is wrapped by every *Error: the input is not a well-formed
// configuration (or an include in it could not be read).
var ErrSyntax = errors.New("configuration syntax error")

// Pos is where something starts: a file (as it was named or found) and a
// 1-based line.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Error is a syntax error, or a failed include, at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrSyntax) hold.
func (e *Error) Unwrap() error { return ErrSyntax }

// Kind is what a Node is.
type Kind int

// The kinds of Node.
const (
	// Option is `name = value`, `name = { v1, v2 }` or `name += ...`.
	Option Kind = iota
	// Section is `name { ... }` or `name title { ... }`.
	Section
	// Include is `include("file")`: its Body holds the file's statements,
	// to be read in place of the call where the layer above allows it.
	Include
)

// Value is one string of an option, a list or a call, after unquoting and
// expansion.
type Value struct {
	Text string
	Pos  Pos
}

// Node is one statement.
type Node struct {
	Kind Kind
	Name string
	Pos  Pos

	// Values are an option's values (one unless List) or an include's
	// argument (the file name as written).
	Values []Value
	// List is set when the values were written in braces, even one or none.
	List bool
	// Append is set for `+=`.
	Append bool

	// Title is a section's title; HasTitle tells `name "" {` from `name {`.
	Title    string
	HasTitle bool
	// Body is a section's statements, or an included file's.
	Body []*Node
	// Path is the file an include read.
	Path string
}

// Options tune Parse.
type Options struct {
	// LookupEnv gives the value of ${NAME}; nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
	// IncludePath lists the directories include() looks in, in order, for
	// a relative name; empty means the name is opened as it is (relative
	// to the working directory), as libconfuse does without a search path.
	IncludePath []string
	// ReadFile reads an included file; nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// Limits on what one configuration may cost: libconfuse's include depth,
// a nesting depth no real configuration approaches, and a total size of
// all files read (includes of includes multiply).
const (
	MaxIncludeDepth = 10
	MaxNesting      = 64
	MaxTotalBytes   = 16 << 20
)

type parser struct {
	opts  Options
	lex   *lexer
	depth int // include depth of this file
	total *int
}

// Parse reads a configuration held in data; name is what errors call the
// file.
func Parse(name string, data []byte, opts Options) ([]*Node, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	total := 0
	return parseFile(name, data, opts, 0, &total)
}

// ParseFile reads the configuration file at path.
func ParseFile(path string, opts Options) ([]*Node, error) {
	read := opts.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	data, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return Parse(path, data, opts)
}

func parseFile(name string, data []byte, opts Options, depth int, total *int) ([]*Node, error) {
	*total += len(data)
	if *total > MaxTotalBytes {
		return nil, &Error{Pos: Pos{File: name, Line: 1}, Msg: fmt.Sprintf("the configuration and its includes exceed %d MiB", MaxTotalBytes>>20)}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		line := 1 + bytes.Count(data[:i], []byte("\n"))
		return nil, &Error{Pos: Pos{File: name, Line: line}, Msg: "NUL byte: this is not a text file"}
	}
	p := &parser{opts: opts, depth: depth, total: total,
		lex: &lexer{src: data, file: name, line: 1, lookupEnv: opts.LookupEnv}}
	return p.body(0, nil)
}

func (p *parser) pos(line int) Pos { return Pos{File: p.lex.file, Line: line} }

func (p *parser) errorf(line int, format string, args ...any) error {
	return &Error{Pos: p.pos(line), Msg: fmt.Sprintf(format, args...)}
}

// body reads statements up to the end of the file (open == nil) or up to
// the brace that closes the section open.
func (p *parser) body(nesting int, open *Node) ([]*Node, error) {
	if nesting > MaxNesting {
		return nil, p.errorf(open.Pos.Line, "sections nested more than %d deep", MaxNesting)
	}
	var nodes []*Node
	for {
		t, err := p.lex.next()
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case tEOF:
			if open != nil {
				return nil, p.errorf(t.line, "end of file inside section %s opened at line %d (a '}' is missing)", open.describe(), open.Pos.Line)
			}
			return nodes, nil
		case tRBrace:
			if open == nil {
				return nil, p.errorf(t.line, "'}' closes no section")
			}
			return nodes, nil
		case tStr:
		default:
			return nil, p.errorf(t.line, "unexpected %s: want an option or section name", t.describe())
		}
		n, err := p.statement(t, nesting)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
}

func (n *Node) describe() string {
	if n.HasTitle {
		return fmt.Sprintf("%s %q", n.Name, n.Title)
	}
	return fmt.Sprintf("%q", n.Name)
}

// statement reads what follows the name token.
func (p *parser) statement(name token, nesting int) (*Node, error) {
	n := &Node{Name: name.text, Pos: p.pos(name.line)}
	t, err := p.lex.next()
	if err != nil {
		return nil, err
	}
	switch t.kind {
	case tEq, tPlusEq:
		n.Kind, n.Append = Option, t.kind == tPlusEq
		return n, p.value(n)
	case tLBrace:
		n.Kind = Section
		n.Body, err = p.body(nesting+1, n)
		return n, err
	case tStr:
		n.Kind, n.Title, n.HasTitle = Section, t.text, true
		b, err := p.lex.next()
		if err != nil {
			return nil, err
		}
		if b.kind != tLBrace {
			return nil, p.errorf(b.line, "section %s: want '{' after the title, not %s", n.describe(), b.describe())
		}
		n.Body, err = p.body(nesting+1, n)
		return n, err
	case tLParen:
		return n, p.call(n)
	}
	return nil, p.errorf(t.line, "%q is followed by %s: want '=', '+=', '{', a section title or '('", n.Name, t.describe())
}

// value reads an option's value: one string or a braced list.
func (p *parser) value(n *Node) error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	switch t.kind {
	case tStr:
		n.Values = []Value{{Text: t.text, Pos: p.pos(t.line)}}
		return nil
	case tLBrace:
	default:
		return p.errorf(t.line, "option %q has no value (found %s)", n.Name, t.describe())
	}
	n.List = true
	n.Values = []Value{}
	for {
		t, err := p.lex.next()
		if err != nil {
			return err
		}
		switch t.kind {
		case tRBrace:
			return nil // {} and a trailing comma are allowed, as in libconfuse
		case tStr:
			n.Values = append(n.Values, Value{Text: t.text, Pos: p.pos(t.line)})
		default:
			return p.errorf(t.line, "list of option %q: want a value or '}', not %s", n.Name, t.describe())
		}
		s, err := p.lex.next()
		if err != nil {
			return err
		}
		switch s.kind {
		case tComma:
		case tRBrace:
			return nil
		default:
			return p.errorf(s.line, "list of option %q: want ',' or '}', not %s", n.Name, s.describe())
		}
	}
}

// call reads a function call's arguments; include is the only function.
func (p *parser) call(n *Node) error {
	var args []Value
	for done := false; !done; {
		t, err := p.lex.next()
		if err != nil {
			return err
		}
		switch t.kind {
		case tRParen:
			done = true
			continue
		case tStr:
			args = append(args, Value{Text: t.text, Pos: p.pos(t.line)})
		default:
			return p.errorf(t.line, "call of %s(): want an argument or ')', not %s", n.Name, t.describe())
		}
		s, err := p.lex.next()
		if err != nil {
			return err
		}
		switch s.kind {
		case tComma:
		case tRParen:
			done = true
		default:
			return p.errorf(s.line, "call of %s(): want ',' or ')', not %s", n.Name, s.describe())
		}
	}
	if n.Name != "include" {
		return p.errorf(n.Pos.Line, "unknown function %s() (include is the only one)", n.Name)
	}
	if len(args) != 1 {
		return p.errorf(n.Pos.Line, "include() takes one file name, not %d arguments", len(args))
	}
	n.Kind, n.Values = Include, args
	return p.include(n)
}

// include reads the file an include names, searching IncludePath.
func (p *parser) include(n *Node) error {
	if p.depth+1 > MaxIncludeDepth {
		return p.errorf(n.Pos.Line, "includes nested more than %d deep", MaxIncludeDepth)
	}
	name := n.Values[0].Text
	if name == "" {
		return p.errorf(n.Pos.Line, "include() of an empty file name")
	}
	var data []byte
	var err error
	switch {
	case len(p.opts.IncludePath) > 0 && !filepath.IsAbs(name):
		err = nil
		found := false
		for _, dir := range p.opts.IncludePath {
			path := filepath.Join(dir, name)
			if data, err = p.opts.ReadFile(path); err == nil {
				n.Path, found = path, true
				break
			}
		}
		if !found {
			return p.errorf(n.Pos.Line, "include(%q): not found in %s", name, strings.Join(p.opts.IncludePath, ":"))
		}
	default:
		n.Path = tildeExpand(name)
		if data, err = p.opts.ReadFile(n.Path); err != nil {
			return p.errorf(n.Pos.Line, "include(%q): %v", name, err)
		}
	}
	n.Body, err = parseFile(n.Path, data, p.opts, p.depth+1, p.total)
	return err
}

// tildeExpand replaces a leading ~/ with the home directory, as libconfuse
// does for names it opens without a search path.
func tildeExpand(name string) string {
	if rest, ok := strings.CutPrefix(name, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return name
}
