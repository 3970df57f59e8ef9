package flagconfig

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Section is a heading of the usage text and the flags under it: those
// named, and those whose name starts with one of Prefixes.
type Section struct {
	Title    string
	Names    []string
	Prefixes []string
}

func (s Section) has(name string) bool {
	if slices.Contains(s.Names, name) {
		return true
	}
	for _, p := range s.Prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// PrintUsage writes fs's flags to w under the sections' headings, each flag
// in the first section that has it, and the flags of no section under
// "Other", so that a new flag is listed before anyone files it. Each flag
// shows its default and its environment variable.
func (l Loader) PrintUsage(w io.Writer, fs *flag.FlagSet, sections []Section) {
	groups := make([][]*flag.Flag, len(sections)+1)
	fs.VisitAll(func(f *flag.Flag) {
		i := slices.IndexFunc(sections, func(s Section) bool { return s.has(f.Name) })
		if i < 0 {
			i = len(sections)
		}
		groups[i] = append(groups[i], f)
	})
	for i, flags := range groups {
		if len(flags) == 0 {
			continue
		}
		title := "Other"
		if i < len(sections) {
			title = sections[i].Title
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, f := range flags {
			typ, usage := flag.UnquoteUsage(f)
			head := "  --" + f.Name
			if typ != "" {
				head += " " + typ
			}
			var notes []string
			if !isZero(f) {
				def := f.DefValue
				if typ == "string" {
					def = fmt.Sprintf("%q", def)
				}
				notes = append(notes, "default "+def)
			}
			if !slices.Contains(l.CommandLineOnly, f.Name) {
				notes = append(notes, "env "+l.EnvName(f.Name))
			}
			if len(notes) > 0 {
				usage += " (" + strings.Join(notes, "; ") + ")"
			}
			fmt.Fprintf(w, "%s\n        %s\n", head, strings.ReplaceAll(usage, "\n", "\n        "))
		}
	}
}

func isZero(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s":
		return true
	}
	return false
}
