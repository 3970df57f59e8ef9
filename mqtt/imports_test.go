package mqtt

import (
	"os/exec"
	"strings"
	"testing"
)

// This package is the only one of mqim that imports mochi (issue 11): the
// rest of the node talks to devices through the Broker. The exceptions are
// tests and the bench's bare-broker reference, which is mochi on purpose.
// (The chat CLI links no broker at all: cmd/mqim's TestCLILinksNoBroker.)
func TestOnlyTheAdapterImportsMochi(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/mqim/mqim/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/mqim/mqim/mqtt":               true,
		"github.com/mqim/mqim/clients/bench/bare": true,
	}
	seen := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Fields(imports) {
			if !strings.HasPrefix(imp, "github.com/mochi-mqtt/") {
				continue
			}
			if pkg == "github.com/mqim/mqim/mqtt" {
				seen = true
			}
			if !allowed[pkg] {
				t.Errorf("%s imports %s: only the MQTT adapter (package mqtt) may", pkg, imp)
			}
		}
	}
	if !seen {
		t.Error("go list shows no mochi import of package mqtt: the test no longer looks at the right thing")
	}
}
