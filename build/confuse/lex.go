package confuse

import (
	"bytes"
	"fmt"
	"strings"
)

// tokKind is what a token is; tStr covers quoted strings, unquoted words
// and `${VAR}` expansions alike, as in libconfuse's lexer.
type tokKind int

const (
	tEOF tokKind = iota
	tStr
	tLBrace
	tRBrace
	tLParen
	tRParen
	tEq
	tPlusEq
	tComma
)

func (k tokKind) String() string {
	switch k {
	case tEOF:
		return "end of file"
	case tStr:
		return "string"
	case tLBrace:
		return "'{'"
	case tRBrace:
		return "'}'"
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tEq:
		return "'='"
	case tPlusEq:
		return "'+='"
	case tComma:
		return "','"
	}
	return fmt.Sprintf("token(%d)", int(k))
}

type token struct {
	kind tokKind
	text string // the string's value, after unquoting and expansion
	line int
}

// describe names a token for an error message.
func (t token) describe() string {
	if t.kind == tStr {
		return fmt.Sprintf("%q", t.text)
	}
	return t.kind.String()
}

// punctuation maps the one-byte tokens to their kinds.
var punctuation = map[byte]tokKind{'{': tLBrace, '}': tRBrace, '(': tLParen, ')': tRParen, '=': tEq, ',': tComma}

// simpleEscapes maps the letters of one-letter escapes to their bytes.
var simpleEscapes = map[byte]byte{'n': '\n', 'r': '\r', 'b': '\b', 'f': '\f', 'a': '\a', 'e': 0x1b, 't': '\t', 'v': '\v'}

// lexer splits one file's bytes into tokens.
type lexer struct {
	src       []byte
	file      string
	i         int
	line      int
	lookupEnv func(string) (string, bool)
}

// wordStop holds the bytes that end an unquoted word (libconfuse's
// `[^ #"'\t\n\r={}()+,*]`).
const wordStop = " \t\n\r#\"'={}()+,*"

func (l *lexer) errorf(line int, format string, args ...any) error {
	return &Error{Pos: Pos{File: l.file, Line: line}, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) peek(off int) byte {
	if l.i+off < len(l.src) {
		return l.src[l.i+off]
	}
	return 0
}

// next returns the next token, skipping white space and comments.
func (l *lexer) next() (token, error) {
	for l.i < len(l.src) {
		c := l.src[l.i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			l.i++
		case c == '\n':
			l.i++
			l.line++
		case c == '#' || c == '/' && l.peek(1) == '/':
			if j := bytes.IndexByte(l.src[l.i:], '\n'); j >= 0 {
				l.i += j
			} else {
				l.i = len(l.src)
			}
		case c == '/' && l.peek(1) == '*':
			start := l.line
			j := bytes.Index(l.src[l.i+2:], []byte("*/"))
			if j < 0 {
				return token{}, l.errorf(start, "comment opened with /* is never closed")
			}
			l.line += bytes.Count(l.src[l.i:l.i+2+j], []byte("\n"))
			l.i += 2 + j + 2
		default:
			return l.token()
		}
	}
	return token{kind: tEOF, line: l.line}, nil
}

// token reads the token that starts at l.i, which is neither white space
// nor a comment.
func (l *lexer) token() (token, error) {
	c, line := l.src[l.i], l.line
	if k, ok := punctuation[c]; ok {
		l.i++
		return token{kind: k, line: line}, nil
	}
	switch {
	case c == '+':
		if l.peek(1) == '=' {
			l.i += 2
			return token{kind: tPlusEq, line: line}, nil
		}
		return token{}, l.errorf(line, "unexpected '+' (the append operator is +=)")
	case c == '*':
		return token{}, l.errorf(line, "unexpected '*' (quote the value if it contains one)")
	case c == '"':
		return l.doubleQuoted()
	case c == '\'':
		return l.singleQuoted()
	case c == '$' && l.peek(1) == '{':
		if end := bytes.IndexByte(l.src[l.i:], '}'); end >= 0 {
			inner := string(l.src[l.i+2 : l.i+end])
			l.line += strings.Count(inner, "\n")
			l.i += end + 1
			return token{kind: tStr, text: l.expand(inner), line: line}, nil
		}
	}
	start := l.i
	for l.i < len(l.src) && strings.IndexByte(wordStop, l.src[l.i]) < 0 {
		l.i++
	}
	word := string(l.src[start:l.i])
	if strings.HasSuffix(word, "$") && l.peek(0) == '{' {
		return token{}, l.errorf(line, "${...} in the middle of the unquoted word %q: put the word in double quotes", word+"{")
	}
	return token{kind: tStr, text: word, line: line}, nil
}

// expand gives the value of the inside of ${...}: NAME, or NAME:-DEFAULT
// where DEFAULT applies only when NAME is unset (as in libconfuse, unlike
// the shell, a variable set to "" stays ""). An unset variable without a
// default expands to nothing.
func (l *lexer) expand(inner string) string {
	name, def, hasDef := inner, "", false
	if i := strings.IndexByte(inner, ':'); i >= 0 && i+1 < len(inner) && inner[i+1] == '-' {
		name, def, hasDef = inner[:i], inner[i+2:], true
	}
	if v, ok := l.lookupEnv(name); ok {
		return v
	}
	if hasDef {
		return def
	}
	return ""
}

// doubleQuoted reads "...": C escapes, ${VAR} expansion, a backslash at the
// end of a line joins the next one, and a plain newline is kept.
func (l *lexer) doubleQuoted() (token, error) {
	line := l.line
	l.i++ // the opening quote
	var b strings.Builder
	for {
		if l.i >= len(l.src) {
			return token{}, l.errorf(line, "string opened with \" is never closed")
		}
		c := l.src[l.i]
		switch {
		case c == '"':
			l.i++
			return token{kind: tStr, text: b.String(), line: line}, nil
		case c == '\n':
			b.WriteByte('\n')
			l.line++
			l.i++
		case c == '$' && l.peek(1) == '{' && bytes.IndexByte(l.src[l.i:], '}') >= 0:
			end := bytes.IndexByte(l.src[l.i:], '}')
			inner := string(l.src[l.i+2 : l.i+end])
			l.line += strings.Count(inner, "\n")
			b.WriteString(l.expand(inner))
			l.i += end + 1
		case c == '\\':
			if err := l.escape(&b); err != nil {
				return token{}, err
			}
		default:
			b.WriteByte(c)
			l.i++
		}
	}
}

// escape reads one backslash sequence of a double-quoted string at l.i.
func (l *lexer) escape(b *strings.Builder) error {
	l.i++ // the backslash
	if l.i >= len(l.src) {
		return nil // the unterminated string is reported by the caller
	}
	c := l.src[l.i]
	switch {
	case c == '\n':
		l.line++ // a line continuation: both characters vanish
		l.i++
	case c >= '0' && c <= '9':
		// libconfuse reads up to three octal digits, but a longer run of
		// digits, or one with an 8 or a 9, is "a bad escape sequence".
		j := l.i
		for j < len(l.src) && l.src[j] >= '0' && l.src[j] <= '9' {
			j++
		}
		digits := string(l.src[l.i:j])
		if len(digits) > 3 || strings.ContainsAny(digits, "89") {
			return l.errorf(l.line, "bad escape sequence \\%s in a string", digits)
		}
		v := 0
		for _, d := range digits {
			v = v*8 + int(d-'0')
		}
		if v > 0xff {
			return l.errorf(l.line, "octal escape \\%s in a string is more than 0377", digits)
		}
		b.WriteByte(byte(v))
		l.i = j
	case c == 'x' && isHex(l.peek(1)):
		v, n := 0, 0
		for n < 2 && isHex(l.peek(1+n)) {
			v = v*16 + hexVal(l.peek(1+n))
			n++
		}
		b.WriteByte(byte(v))
		l.i += 1 + n
	default:
		if r, ok := simpleEscapes[c]; ok {
			b.WriteByte(r)
		} else {
			b.WriteByte(c) // \" \\ \$ and any other character stand for themselves
		}
		l.i++
	}
	return nil
}

// singleQuoted reads '...': no expansion, and only \\ and \' are escapes
// (a backslash before anything else stays), plus line continuation.
func (l *lexer) singleQuoted() (token, error) {
	line := l.line
	l.i++
	var b strings.Builder
	for {
		if l.i >= len(l.src) {
			return token{}, l.errorf(line, "string opened with ' is never closed")
		}
		c := l.src[l.i]
		switch {
		case c == '\'':
			l.i++
			return token{kind: tStr, text: b.String(), line: line}, nil
		case c == '\n':
			b.WriteByte('\n')
			l.line++
			l.i++
		case c == '\\' && l.peek(1) == '\n':
			l.line++
			l.i += 2
		case c == '\\' && (l.peek(1) == '\\' || l.peek(1) == '\''):
			b.WriteByte(l.peek(1))
			l.i += 2
		default:
			b.WriteByte(c)
			l.i++
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}
