package builtin

import (
	"fmt"
	"slices"
	"strings"
)

// Spec is a parsed filter spec: `scan:sig=EICAR,sig=X5O` has Name "scan" and
// Params {"sig": ["EICAR", "X5O"]}.
type Spec struct {
	Name   string
	Params map[string][]string
	Raw    string
}

// ParseSpec parses `NAME[:key=value,...]`, checking the name and keys
// against the registry.
func ParseSpec(s string) (Spec, error) {
	name, rest, _ := strings.Cut(s, ":")
	f := Lookup(name)
	if f == nil {
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
		if !slices.Contains(f.Params, key) {
			if len(f.Params) == 0 {
				return Spec{}, fmt.Errorf("filter %q: %s takes no parameters", s, name)
			}
			return Spec{}, fmt.Errorf("filter %q: unknown key %q (have %s)", s, key, strings.Join(f.Params, ", "))
		}
		spec.Params[key] = append(spec.Params[key], value)
	}
	return spec, nil
}

// Filter returns the registry entry of the spec's filter.
func (s Spec) Filter() *Filter { return Lookup(s.Name) }

// Kind returns where the filter attaches: a minifilter that can also attach
// at disk level (scan) does so when narrowed to an export with on=EXPORT.
func (s Spec) Kind() Kind {
	f := s.Filter()
	if f.Kind == Minifilter && f.Disk != nil && s.Get("on") != "" {
		return DiskLevel
	}
	return f.Kind
}

// Get returns the last value of key, or "".
func (s Spec) Get(key string) string {
	if v := s.Params[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}
