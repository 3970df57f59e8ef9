package im

import (
	"os/exec"
	"strings"
	"testing"
)

// The core is transport-free: no package of mqim it is built from imports
// mochi, net/http or NATS, and none of them is linked at all but net/http
// (which the Prometheus client brings along).
func TestCoreImportsNoTransport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{"github.com/mochi-mqtt/", "github.com/nats-io/", "net/http", "github.com/eclipse/paho"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, b := range banned {
			if strings.HasPrefix(pkg, b) && b != "net/http" {
				t.Errorf("the core links %s", pkg)
			}
			if strings.HasPrefix(pkg, "github.com/mqim/mqim") {
				for _, imp := range strings.Fields(imports) {
					if strings.HasPrefix(imp, b) {
						t.Errorf("%s, part of the core, imports %s", pkg, imp)
					}
				}
			}
		}
	}
}
