package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mqim/mqim/store"
)

// BenchAppend measures s.Append in batches of size, one batch at a time, the
// way one group-commit writer calls it. Messages go round-robin through 1000
// users, each to the next one. Every store's BenchmarkAppend runs it, so the
// figures compare.
func BenchAppend(b *testing.B, s store.Store, size int) {
	users := BenchUsers(b, s)
	ctx := context.Background()
	seq := 0
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		batch := make([]store.SendRequest, min(size, b.N-sent))
		for i := range batch {
			seq++
			from, to := users[seq%len(users)], users[(seq+1)%len(users)]
			batch[i] = store.SendRequest{ID: int64(seq), From: from, To: to, Cmid: fmt.Sprint(seq),
				Type: "text", Body: []byte("hello, this is a benchmark message"), Digest: []byte("digest"),
				TS: time.Now().UnixMilli()}
		}
		res, err := s.Append(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || r.Duplicate {
				b.Fatalf("%+v", r)
			}
		}
		sent += len(batch)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchUsers creates the 1000 users u0…u999 of the benchmarks.
func BenchUsers(b *testing.B, s store.Store) []string {
	users := make([]string, 1000)
	for i := range users {
		users[i] = fmt.Sprint("u", i)
		if err := s.EnsureUser(context.Background(), users[i], ""); err != nil {
			b.Fatal(err)
		}
	}
	return users
}
