package builtin

import (
	"fmt"
	"sort"
	"strings"
)

// Spec is a parsed filter spec: `scan:sig=EICAR,sig=X5O` has Name "scan" and
// Params {"sig": ["EICAR", "X5O"]}.
type Spec struct {
	Name   string
	Params map[string][]string
	Raw    string
}

// Kind says where a built-in filter attaches.
type Kind int

// The kinds of built-in filter.
const (
	Minifilter Kind = iota // on file system volumes, through the filter manager
	DiskLevel              // on disk and partition stacks, beneath the file systems
)

// known lists the built-in filters, their kind and the keys they accept.
var known = map[string]struct {
	kind Kind
	keys []string
}{
	"monitor":      {Minifilter, nil},
	"scan":         {Minifilter, []string{"sig", "on"}},
	"readonly":     {Minifilter, nil},
	"trace":        {DiskLevel, []string{"on"}},
	"passthrough":  {DiskLevel, []string{"on"}},
	"writeprotect": {DiskLevel, []string{"on"}},
	"faults":       {DiskLevel, []string{"on", "read-error", "write-error", "latency", "seed"}},
	"cow":          {DiskLevel, []string{"on", "overlay"}},
	"crypt":        {DiskLevel, []string{"on", "key-file"}},
}

// Names returns the built-in filter names, sorted.
func Names() []string {
	var out []string
	for n := range known {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseSpec parses `NAME[:key=value,...]`, checking the name and keys.
func ParseSpec(s string) (Spec, error) {
	name, rest, _ := strings.Cut(s, ":")
	k, ok := known[name]
	if !ok {
		return Spec{}, fmt.Errorf("filter %q: unknown filter (have %s)", name, strings.Join(Names(), ", "))
	}
	spec := Spec{Name: name, Params: map[string][]string{}, Raw: s}
	if rest == "" {
		return spec, nil
	}
	for _, kv := range strings.Split(rest, ",") {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return Spec{}, fmt.Errorf("filter %q: %q is not key=value", s, kv)
		}
		allowed := false
		for _, a := range k.keys {
			allowed = allowed || a == key
		}
		if !allowed {
			if len(k.keys) == 0 {
				return Spec{}, fmt.Errorf("filter %q: %s takes no parameters", s, name)
			}
			return Spec{}, fmt.Errorf("filter %q: unknown key %q (have %s)", s, key, strings.Join(k.keys, ", "))
		}
		spec.Params[key] = append(spec.Params[key], value)
	}
	return spec, nil
}

// Kind returns where the filter attaches. scan attaches at disk level when
// narrowed to an export with on=EXPORT.
func (s Spec) Kind() Kind {
	if s.Name == "scan" && s.Get("on") != "" {
		return DiskLevel
	}
	return known[s.Name].kind
}

// Get returns the last value of key, or "".
func (s Spec) Get(key string) string {
	if v := s.Params[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}
