package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/internal/testpg"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/pgstore"
	"github.com/mqim/mqim/store/storetest"
)

func open(tb testing.TB, url string) *pgstore.Store {
	tb.Helper()
	s, err := pgstore.Open(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		url := testpg.URL(t)
		return func() store.Store { return open(t, url) }
	})
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Port 1 on localhost: nothing listens there, the dial fails at once.
	_, err := pgstore.Open(ctx, "postgres://nobody@localhost:1/none?connect_timeout=5")
	if err == nil {
		t.Fatal("Open of an unreachable database succeeded")
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "connect to postgres: ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line starting with \"connect to postgres: \"", msg)
	}
}

func TestOpenInvalidOption(t *testing.T) {
	_, err := pgstore.Open(t.Context(), "postgres://localhost/x", pgstore.WithMaxConns(-1))
	if !errors.Is(err, pgstore.ErrInvalidOption) {
		t.Errorf("Open with max conns -1: %v; want ErrInvalidOption", err)
	}
}

// TestMigrateConcurrently opens several stores on one empty schema at once:
// the migration lock lets one create the tables and the others find them.
func TestMigrateConcurrently(t *testing.T) {
	url := testpg.URL(t)
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			s, err := pgstore.Open(t.Context(), url)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir("migrations"); n != len(files) || n == 0 {
		t.Errorf("%d migrations recorded; want %d, one per file", n, len(files))
	}
}

// BenchmarkAppend measures Append in batches of 100 and of 1 message
// (storetest.BenchAppend, shared with the other stores).
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 1} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b, testpg.URL(b))
			defer s.Close()
			storetest.BenchAppend(b, s, size)
		})
	}
}

// BenchmarkInsertCeiling is the reference for BenchmarkAppend: the same rows
// (one message and two inbox rows per message) inserted with the same
// statements, one transaction per batch, without lookups, locks or counters.
func BenchmarkInsertCeiling(b *testing.B) {
	for _, size := range []int{100, 1} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			url := testpg.URL(b)
			open(b, url).Close() // create the tables
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(ctx)
			seq := int64(0)
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < b.N; {
				n := min(size, b.N-sent)
				var (
					conv, sender, cmid, typ, iUser, iConv, iActor []string
					mSeq, id, ts, iSeq, iConvSeq, iTS             []int64
					body, digest                                  [][]byte
				)
				for range n {
					seq++
					from, to := fmt.Sprint("u", seq%1000), fmt.Sprint("u", (seq+1)%1000)
					c := "d:" + from + ":" + to
					conv, mSeq, id, sender, cmid = append(conv, c), append(mSeq, seq), append(id, seq), append(sender, from), append(cmid, fmt.Sprint(seq))
					typ, body, digest, ts = append(typ, "text"), append(body, []byte("hello, this is a benchmark message")), append(digest, []byte("digest")), append(ts, time.Now().UnixMilli())
					for _, u := range []string{to, from} {
						iUser, iSeq, iConv, iConvSeq, iActor, iTS = append(iUser, u), append(iSeq, seq), append(iConv, c), append(iConvSeq, seq), append(iActor, from), append(iTS, ts[len(ts)-1])
					}
				}
				err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					batch := &pgx.Batch{}
					batch.Queue(`INSERT INTO messages (conv_id, seq, id, sender, cmid, type, body, digest, ts)
						SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
							$6::text[], $7::bytea[], $8::bytea[], $9::bigint[])`,
						conv, mSeq, id, sender, cmid, typ, body, digest, ts)
					batch.Queue(`INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts)
						SELECT u, s, 1, c, cs, a, t FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::bigint[])
							AS x(u, s, c, cs, a, t)`, iUser, iSeq, iConv, iConvSeq, iActor, iTS)
					return tx.SendBatch(ctx, batch).Close()
				})
				if err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
