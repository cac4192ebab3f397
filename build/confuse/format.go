package confuse

import (
	"fmt"
	"strings"
)

// Format writes nodes back in the configuration language, one statement a
// line, indented by a tab per section: what Parse reads back as the same
// tree (positions aside). Strings are written bare when they are plain
// words and in double quotes otherwise, escaped so that nothing in them is
// expanded or ends them.
func Format(nodes []*Node) []byte {
	var b strings.Builder
	formatBody(&b, nodes, 0)
	return []byte(b.String())
}

func formatBody(b *strings.Builder, nodes []*Node, indent int) {
	tabs := strings.Repeat("\t", indent)
	for _, n := range nodes {
		b.WriteString(tabs)
		switch n.Kind {
		case Option:
			op := " = "
			if n.Append {
				op = " += "
			}
			b.WriteString(Quote(n.Name) + op)
			if !n.List {
				b.WriteString(Quote(n.Values[0].Text))
			} else {
				vs := make([]string, len(n.Values))
				for i, v := range n.Values {
					vs[i] = Quote(v.Text)
				}
				b.WriteString("{" + strings.Join(vs, ", ") + "}")
			}
			b.WriteString("\n")
		case Section:
			b.WriteString(Quote(n.Name))
			if n.HasTitle {
				b.WriteString(" " + Quote(n.Title))
			}
			b.WriteString(" {\n")
			formatBody(b, n.Body, indent+1)
			b.WriteString(tabs + "}\n")
		case Include:
			fmt.Fprintf(b, "include(%s)\n", Quote(n.Values[0].Text))
		}
	}
}

// Quote writes s so that the lexer reads it back as s: bare when it is a
// word that cannot be taken for anything else, else double-quoted.
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, wordStop+"$\\") && !strings.HasPrefix(s, "//") && !strings.HasPrefix(s, "/*") && !hasControl(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
