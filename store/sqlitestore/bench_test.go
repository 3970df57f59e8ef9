package sqlitestore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/sqlitestore"
)

// BenchmarkAppend measures Append as pgstore's BenchmarkAppend does, in
// batches of 100 and of 1 message, one batch at a time, the way one
// group-commit writer calls it; messages go round-robin through 1000 users,
// each to the next one. It runs with synchronous=FULL (the default) and
// NORMAL.
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, size := range []int{100, 1} {
			name := fmt.Sprintf("batch=%d", size)
			if sync != "FULL" {
				name += "/sync=" + sync
			}
			b.Run(name, func(b *testing.B) {
				s := open(b, filepath.Join(b.TempDir(), "bench.db"), sqlitestore.WithSynchronous(sync))
				defer s.Close()
				users := benchUsers(b, s)
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
			})
		}
	}
}

func benchUsers(b *testing.B, s store.Store) []string {
	users := make([]string, 1000)
	for i := range users {
		users[i] = fmt.Sprint("u", i)
		if err := s.EnsureUser(context.Background(), users[i], ""); err != nil {
			b.Fatal(err)
		}
	}
	return users
}
