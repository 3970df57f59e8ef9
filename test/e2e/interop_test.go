package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testdeps"
	"github.com/mqim/mqim/protocol"
)

// mosquittoTools returns the paths of mosquitto_pub and mosquitto_sub.
// Without them the test is skipped, or fails under scripts/test and CI
// (testdeps.Required).
func mosquittoTools(t *testing.T) (pub, sub string) {
	t.Helper()
	pub, err1 := exec.LookPath("mosquitto_pub")
	sub, err2 := exec.LookPath("mosquitto_sub")
	if err1 != nil || err2 != nil {
		testdeps.Missing(t, "mosquitto_pub/mosquitto_sub not found (Debian: apt-get install mosquitto-clients)")
	}
	return pub, sub
}

// TestMosquittoInterop: off-the-shelf clients work as in the worked session
// (§9): mosquitto_sub on bob's inbox receives, as JSON, a message sent with
// mosquitto_pub as alice. MQTT 3.1.1 gets JSON by default; the MQTT 5 run
// asks for it with the CONNECT user property format [IM-1.2-3].
func TestMosquittoInterop(t *testing.T) {
	pubBin, subBin := mosquittoTools(t)
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		host, port, err := net.SplitHostPort(n.MQTTAddr())
		if err != nil {
			t.Fatal(err)
		}
		common := func(user, id string) []string {
			v := "311"
			if dl.v5() {
				v = "5"
			}
			return []string{"-V", v, "-h", host, "-p", port, "-i", id, "-u", user, "-P", token(t, user), "-q", "1"}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		subArgs := append(common("bob", "bob.sub"), "-t", protocol.InboxTopic("bob"), "-C", "1", "-W", "20")
		if dl.v5() {
			subArgs = append(subArgs, "-D", "connect", "user-property", "format", "json")
		}
		sub := exec.CommandContext(ctx, subBin, subArgs...)
		var out, errOut bytes.Buffer
		sub.Stdout, sub.Stderr = &out, &errOut
		if err := sub.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- sub.Wait() }()
		// Publish only once the subscriber is subscribed (it also creates bob).
		eventually(t, waitTimeout, "mosquitto_sub to subscribe", func() bool {
			select {
			case err := <-exited:
				t.Fatalf("mosquitto_sub exited early: %v: %s", err, errOut.String())
			default:
			}
			return n.Subscribed("bob.sub", protocol.InboxTopic("bob"))
		})

		send := `{"cmid":"01JH0Z6Q4T3W8YV5B2K7C9D1EF","to":"bob","type":"text","body":{"text":"hi bob"}}`
		pubArgs := append(common("alice", "alice.pub"), "-t", protocol.SendTopic("alice"), "-m", send)
		if dl.v5() {
			pubArgs = append(pubArgs, "-d") // prints the PUBACK reason code
		}
		pubOut, err := exec.CommandContext(ctx, pubBin, pubArgs...).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, pubOut)
		}
		if dl.v5() && !strings.Contains(string(pubOut), "RC:0") {
			t.Fatalf("mosquitto_pub: no success PUBACK in %s", pubOut)
		}

		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("mosquitto_sub: %v: %s", err, errOut.String())
			}
		case <-ctx.Done():
			t.Fatal("mosquitto_sub did not exit")
		}
		line := strings.TrimSpace(out.String())
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("mosquitto_sub printed %q: %v", line, err)
		}
		msg, _ := ev["msg"].(map[string]any)
		body, _ := msg["body"].(map[string]any)
		id, _ := msg["id"].(string)
		if ev["kind"] != "message" || ev["seq"] != 1.0 || ev["conv"] != "d:alice:bob" || ev["conv_seq"] != 1.0 ||
			msg["from"] != "alice" || msg["cmid"] != "01JH0Z6Q4T3W8YV5B2K7C9D1EF" || body["text"] != "hi bob" {
			t.Fatalf("mosquitto_sub printed %s", line)
		}
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			t.Fatalf("message id %v is not a decimal string [IM-1.2-5]", msg["id"])
		}

		if dl.v5() {
			// A failing MQTT 5 send shows its reason code: 0x83 = 131 for
			// unknown_user (§9).
			bad := `{"cmid":"01JH0Z9A0B1C2D3E4F5G6H7J8K","to":"carol","type":"text","body":{"text":"?"}}`
			out, _ := exec.CommandContext(ctx, pubBin, append(common("alice", "alice.pub"), "-d", "-t", protocol.SendTopic("alice"), "-m", bad)...).CombinedOutput()
			if !strings.Contains(string(out), "RC:131") {
				t.Fatalf("mosquitto_pub to an unknown user: %s", out)
			}
		}
	})
}
