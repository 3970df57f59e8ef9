package main

import (
	"bytes"
	"fmt"
	"os"
)

// minSecret is the shortest webhook signing secret mqimd takes.
const minSecret = 16

// readSecretFile reads a signing secret from path for flag: the file's
// contents without surrounding white space, so that the newline `echo`
// writes is not part of the secret (as for <data-dir>/jwt-secret).
func readSecretFile(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if b = bytes.TrimSpace(b); len(b) < minSecret {
		return nil, fmt.Errorf("--%s: the secret must be at least %d bytes", flag, minSecret)
	}
	return b, nil
}
