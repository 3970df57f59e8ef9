package im

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// The spec's method index [IM-7.1-9] is the method table: the same
// methods, each ordered or not alike.
func TestMethodTableMatchesSpec(t *testing.T) {
	f, err := os.Open("../protocol/spec.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec := map[string]bool{} // method → ordered
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.Contains(line, "**[IM-7.1-9]**"):
			in = true
		case in && strings.HasPrefix(line, "- **[IM-"):
			in = false
		case in && strings.HasPrefix(line, "| `"):
			cells := strings.Split(line, "|")
			spec[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2]) == "yes"
		}
	}
	if len(spec) == 0 {
		t.Fatal("no method index under [IM-7.1-9] in spec.md")
	}
	for _, m := range methodList {
		ordered, ok := spec[m.name]
		switch {
		case !ok:
			t.Errorf("method %s is served but not in the spec's index", m.name)
		case ordered != m.ordered:
			t.Errorf("method %s: ordered %v in the table, %v in the spec", m.name, m.ordered, ordered)
		}
		delete(spec, m.name)
	}
	for name := range spec {
		t.Errorf("the spec lists %s, which the server does not serve", name)
	}
}
