package mqtt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/sqlitestore"
)

// counting counts the membership queries that reach the store.
type counting struct {
	*sqlitestore.Store
	queries atomic.Int64
}

func (c *counting) IsMember(ctx context.Context, conv, user string) (bool, error) {
	c.queries.Add(1)
	return c.Store.IsMember(ctx, conv, user)
}

// TestMembersCache, on a real (embedded) store: answers are cached, Forget
// drops them at once, a store failure refuses and is not cached
// [IM-2.2-4].
func TestMembersCache(t *testing.T) {
	ctx := t.Context()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.EnsureUsers(ctx, []string{"alice", "bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	change := func(c store.GroupChange) {
		t.Helper()
		c.Group, c.ID, c.TS = "g:1", time.Now().UnixNano(), time.Now().UnixMilli()
		if _, err := st.ChangeGroup(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	change(store.GroupChange{Actor: "alice", Op: store.OpCreate, Users: []string{"carol"}})

	cs := &counting{Store: st}
	m := &Members{Store: cs, NegativeTTL: time.Hour}
	for range 3 {
		if !m.Member("g:1", "alice") || m.Member("g:1", "bob") || !m.Member("g:1", "carol") {
			t.Fatal("wrong answer")
		}
	}
	if q := cs.queries.Load(); q != 3 {
		t.Fatalf("%d store queries, want 3 (cached)", q)
	}
	change(store.GroupChange{Actor: "alice", Op: store.OpAdd, Users: []string{"bob"}})
	change(store.GroupChange{Actor: "alice", Op: store.OpRemove, Users: []string{"carol"}})
	if !m.Member("g:1", "carol") || m.Member("g:1", "bob") {
		t.Fatal("cached answers not used")
	}
	m.Forget("g:1", "bob", "carol")
	if !m.Member("g:1", "bob") || m.Member("g:1", "carol") {
		t.Fatal("Forget did not drop the answers")
	}
	m.Forget("g:1")
	if m.n != 0 {
		t.Fatalf("%d entries counted after Forget, want 0", m.n)
	}
	st.Close() // the store fails from now on
	if m.Member("g:1", "bob") {
		t.Fatal("a store failure allowed the subscription")
	}
	if m.n != 0 {
		t.Fatal("a store failure was cached")
	}
}

// racing answers true, after letting the test run Forget while the query is
// in flight: the answer of a query that a Forget overtook is not cached.
type racing struct {
	started, release chan struct{}
	queries          atomic.Int64
}

func (r *racing) IsMember(ctx context.Context, conv, user string) (bool, error) {
	if r.queries.Add(1) == 1 {
		close(r.started)
		<-r.release
	}
	return true, nil
}

func TestMembersForgetDuringQuery(t *testing.T) {
	r := &racing{started: make(chan struct{}), release: make(chan struct{})}
	m := &Members{Store: r}
	done := make(chan bool)
	go func() { done <- m.Member("g:1", "bob") }()
	<-r.started
	m.Forget("g:1", "bob") // bob's removal commits while the query runs
	close(r.release)
	<-done
	m.Member("g:1", "bob")
	if q := r.queries.Load(); q != 2 {
		t.Fatalf("%d store queries, want 2: the overtaken answer was cached", q)
	}
}

type never struct{}

func (never) IsMember(context.Context, string, string) (bool, error) { return false, nil }

// TestMembersRefusalsBounded: refusals (SUBSCRIBE to made-up groups) are
// bounded on their own and never push out members.
func TestMembersRefusalsBounded(t *testing.T) {
	m := &Members{Store: never{}}
	m.mu.Lock()
	m.entries = map[string]map[string]memberEntry{"g:1": {"alice": {member: true, expires: time.Now().Add(time.Hour)}}}
	m.n = 1
	m.mu.Unlock()
	for i := range 3 * maxNegativeEntries {
		if m.Member(fmt.Sprint("g:x", i), "mallory") {
			t.Fatal("refusal answered true")
		}
	}
	if m.negatives > maxNegativeEntries || m.n > maxNegativeEntries+1 {
		t.Fatalf("%d refusals cached (%d entries), bound %d", m.negatives, m.n, maxNegativeEntries)
	}
	if !m.Member("g:1", "alice") {
		t.Fatal("a cached member was pushed out by refusals")
	}
}
