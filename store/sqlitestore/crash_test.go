package sqlitestore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/sqlitestore"
)

// The crash test runs this test binary again as a child process that
// appends; these variables tell TestMain to be that child.
const (
	crashPathEnv = "MQIM_SQLITESTORE_CRASH_PATH"
	crashSyncEnv = "MQIM_SQLITESTORE_CRASH_SYNC"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashPathEnv); path != "" {
		crashChild(path, os.Getenv(crashSyncEnv))
		return
	}
	os.Exit(m.Run())
}

var crashUsers = []string{"alice", "bob", "carol", "dave"}

// crashChild appends from two goroutines until it is killed, and prints a
// line for each acknowledged message and each of its inbox events:
//
//	msg <id> <conv> <seq>
//	ev <user> <seq> <conv> <conv seq>
func crashChild(path, mode string) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, path, sqlitestore.WithSynchronous(mode))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, u := range crashUsers {
		if err := s.EnsureUser(ctx, u, ""); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	var mu sync.Mutex // one write per ack, whole lines
	for w := range 2 {
		go func() {
			for k := 0; ; k++ {
				batch := make([]store.SendRequest, k%5+1)
				for j := range batch {
					n := int64(w)<<40 | int64(k)<<8 | int64(j) // unique id and cmid
					from, to := crashUsers[(k+j+w)%4], crashUsers[(k+j+w+1+j%2)%4]
					batch[j] = store.SendRequest{ID: n, From: from, To: to, Cmid: fmt.Sprint(n), Type: "text",
						Body: []byte("crash"), Digest: []byte("d"), TS: time.Now().UnixMilli()}
				}
				res, err := s.Append(ctx, batch)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				var b bytes.Buffer
				for _, r := range res {
					if r.Err != nil || r.Duplicate {
						fmt.Fprintf(os.Stderr, "unexpected result %+v\n", r)
						os.Exit(2)
					}
					fmt.Fprintf(&b, "msg %d %s %d\n", r.Msg.ID, r.Msg.Conv, r.Msg.Seq)
					for _, e := range r.Events {
						fmt.Fprintf(&b, "ev %s %d %s %d\n", e.User, e.Seq, e.Conv, e.ConvSeq)
					}
				}
				mu.Lock()
				os.Stdout.Write(b.Bytes()) //nolint:errcheck // the parent sees missing lines
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrash kills a process that is appending (SIGKILL) once it has
// acknowledged enough messages, then checks that the reopened store has
// every acknowledged message and event, with seqs that have no gap and that
// continue.
func TestCrash(t *testing.T) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		t.Run("sync="+sync, func(t *testing.T) { testCrash(t, sync) })
	}
}

type ackedEvent struct {
	conv    string
	convSeq int64
}

func testCrash(t *testing.T, sync string) {
	const minAcks = 300
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashPathEnv+"="+path, crashSyncEnv+"="+sync)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Only a guard against a child that hangs; the kill below is on acks.
	guard := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer guard.Stop()

	msgs := map[string]map[int64]int64{} // conv → seq → id
	events := map[string]map[int64]ackedEvent{}
	acks := 0
	sc := bufio.NewScanner(stdout)
	// Lines printed before the kill are acknowledged too: read to EOF.
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "msg":
			var id, seq int64
			fmt.Sscan(f[1], &id)
			fmt.Sscan(f[3], &seq)
			if msgs[f[2]] == nil {
				msgs[f[2]] = map[int64]int64{}
			}
			msgs[f[2]][seq] = id
			if acks++; acks == minAcks {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		case len(f) == 5 && f[0] == "ev":
			var seq, convSeq int64
			fmt.Sscan(f[2], &seq)
			fmt.Sscan(f[4], &convSeq)
			if events[f[1]] == nil {
				events[f[1]] = map[int64]ackedEvent{}
			}
			events[f[1]][seq] = ackedEvent{f[3], convSeq}
		default:
			t.Fatalf("child printed %q", sc.Text())
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not killed; stderr:\n%s", err, stderr.String())
	}
	if acks < minAcks {
		t.Fatalf("child acknowledged %d messages; want at least %d", acks, minAcks)
	}
	t.Logf("killed after %d acknowledged messages", acks)

	s := open(t, path)
	defer s.Close()
	ctx := t.Context()
	lastSeq := map[string]int64{}
	for conv, acked := range msgs {
		member, _, _ := protocol.DirectPeers(conv)
		var all []store.Message
		for after := int64(0); ; {
			p, err := s.History(ctx, member, conv, store.HistoryQuery{After: after, Limit: 200})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Messages...)
			if !p.HasMore {
				break
			}
			after = p.Messages[len(p.Messages)-1].Seq
		}
		for i, m := range all {
			if m.Seq != int64(i+1) {
				t.Fatalf("%s: message %d has seq %d; want seqs 1..n without gap", conv, i, m.Seq)
			}
		}
		for seq, id := range acked {
			if seq > int64(len(all)) || all[seq-1].ID != id {
				t.Errorf("%s: acknowledged message %d at seq %d is missing", conv, id, seq)
			}
		}
		lastSeq[conv] = int64(len(all))
	}
	latest := map[string]int64{}
	for _, u := range crashUsers {
		var all []store.InboxEvent
		for after := int64(0); ; {
			p, err := s.Sync(ctx, u, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Events...)
			latest[u] = p.Latest
			if !p.HasMore {
				break
			}
			after = p.Events[len(p.Events)-1].Seq
		}
		for i, e := range all {
			if e.Seq != int64(i+1) {
				t.Fatalf("%s: inbox event %d has seq %d; want seqs 1..n without gap", u, i, e.Seq)
			}
		}
		if latest[u] != int64(len(all)) {
			t.Errorf("%s: latest %d, %d events", u, latest[u], len(all))
		}
		for seq, want := range events[u] {
			if seq > int64(len(all)) || all[seq-1].Conv != want.conv || all[seq-1].ConvSeq != want.convSeq {
				t.Errorf("%s: acknowledged inbox event %d (%s/%d) is missing", u, seq, want.conv, want.convSeq)
			}
		}
	}

	// The seqs continue after the crash.
	res, err := s.Append(ctx, []store.SendRequest{{ID: 1 << 50, From: "alice", To: "bob", Cmid: "after",
		Type: "text", Body: []byte("after"), Digest: []byte("d"), TS: time.Now().UnixMilli()}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Append after the crash: %v, %+v", err, res)
	}
	conv := protocol.DirectConv("alice", "bob")
	if got := res[0].Msg.Seq; got != lastSeq[conv]+1 {
		t.Errorf("%s: seq after the crash %d; want %d", conv, got, lastSeq[conv]+1)
	}
	got := []int64{res[0].Events[0].Seq, res[0].Events[1].Seq}
	want := []int64{latest[res[0].Events[0].User] + 1, latest[res[0].Events[1].User] + 1}
	if !slices.Equal(got, want) {
		t.Errorf("inbox seqs after the crash %v; want %v", got, want)
	}
}
