package sqlitestore_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mqim/mqim/store/sqlitestore"
	"github.com/mqim/mqim/store/storetest"
)

// BenchmarkAppend measures Append as pgstore's BenchmarkAppend does
// (storetest.BenchAppend), with synchronous=FULL (the default) and NORMAL.
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
				storetest.BenchAppend(b, s, size)
			})
		}
	}
}
