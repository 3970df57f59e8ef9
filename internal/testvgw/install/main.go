// Command install builds the versitygw binary the S3 tests use, if it is not
// cached yet, and prints its path. scripts/test runs it before go test, so
// that the build is done once, outside any test's time.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/mqim/mqim/internal/testvgw"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := testvgw.Binary(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "versitygw:", err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
