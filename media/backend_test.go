package media_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testvgw"
	"github.com/mqim/mqim/media"
)

// backends returns each Backend on a fresh place: Disk in a temporary
// directory, S3 on a bucket of a real versitygw.
func backends(t *testing.T) map[string]func(t *testing.T) media.Backend {
	return map[string]func(t *testing.T) media.Backend{
		"disk": func(t *testing.T) media.Backend {
			d, err := media.NewDisk(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		"s3": func(t *testing.T) media.Backend {
			s, err := media.NewS3(ctx(t), testvgw.Start(t).Config())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// Both backends keep what was put, byte for byte, with its metadata; read
// from an offset (what Range requests do); an unknown or malformed id is
// ErrNotFound.
func TestBackends(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			// Above the S3 client's 16 MiB part size: a multipart upload.
			for _, size := range []int{1, 1000, 17 << 20} {
				data := make([]byte, size)
				rand.Read(data)
				meta := media.Meta{ID: media.NewID(), Owner: "alice", Mime: "image/png", Size: int64(size),
					SHA256: strings.Repeat("ab", 32), Name: "çà et là 猫.png", Created: time.Now().UnixMilli()}
				if err := b.Put(ctx(t), meta, bytes.NewReader(data)); err != nil {
					t.Fatalf("put %d bytes: %v", size, err)
				}
				obj, got, err := b.Open(ctx(t), meta.ID)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if got != meta {
					t.Errorf("metadata: got %+v, want %+v", got, meta)
				}
				all, err := io.ReadAll(obj)
				if err != nil || !bytes.Equal(all, data) {
					t.Fatalf("read %d bytes: %d bytes, %v", size, len(all), err)
				}
				off := int64(size / 2)
				if _, err := obj.Seek(off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				part := make([]byte, min(10, size-int(off)))
				if _, err := io.ReadFull(obj, part); err != nil || !bytes.Equal(part, data[off:off+int64(len(part))]) {
					t.Fatalf("read at %d: %v", off, err)
				}
				if end, err := obj.Seek(0, io.SeekEnd); err != nil || end != int64(size) {
					t.Fatalf("seek to end: %d, %v", end, err)
				}
				obj.Close()
			}
			for _, id := range []string{media.NewID(), "../../etc/passwd", ""} {
				if _, _, err := b.Open(ctx(t), id); !errors.Is(err, media.ErrNotFound) {
					t.Errorf("open %q: %v, want ErrNotFound", id, err)
				}
			}
		})
	}
}

// A wrong S3 configuration is an error from NewS3 that says what is wrong,
// and never carries the secret.
func TestS3BadConfig(t *testing.T) {
	srv := testvgw.Start(t)
	good := srv.Config()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	cases := []struct {
		name string
		edit func(*media.S3Config)
		want string
	}{
		{"unreachable", func(c *media.S3Config) { c.Endpoint = dead }, "unreachable"},
		{"wrong secret", func(c *media.S3Config) { c.SecretKey = "not-" + c.SecretKey }, "credentials refused"},
		{"unknown access key", func(c *media.S3Config) { c.AccessKey = "nobody" }, "access key"},
		{"no bucket", func(c *media.S3Config) { c.Bucket = "" }, "bucket is required"},
		{"bad bucket name", func(c *media.S3Config) { c.Bucket = "Not_A_Bucket" }, `S3 bucket "Not_A_Bucket": Bucket name contains invalid characters`},
		{"no secret", func(c *media.S3Config) { c.SecretKey = "" }, "secret key are required"},
		{"endpoint with path", func(c *media.S3Config) { c.Endpoint += "/bucket" }, "without path"},
		{"endpoint without scheme", func(c *media.S3Config) { c.Endpoint = strings.TrimPrefix(c.Endpoint, "http://") }, "want http://"},
	}
	for _, c := range cases {
		cfg := good
		c.edit(&cfg)
		start := time.Now()
		_, err := media.NewS3(ctx(t), cfg)
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.name)
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %q does not say %q", c.name, err, c.want)
		case strings.Contains(err.Error(), good.SecretKey):
			t.Errorf("%s: the error shows the secret: %q", c.name, err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s: took %v", c.name, d)
		}
		t.Logf("%s: %v (%v)", c.name, err, time.Since(start).Round(time.Millisecond))
	}

	// Several nodes may create the bucket at once; one that exists is used
	// as it is.
	errs := make(chan error, 3)
	for range cap(errs) {
		go func() {
			_, err := media.NewS3(ctx(t), good)
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("concurrent start: %v", err)
		}
	}
	if _, err := media.NewS3(ctx(t), good); err != nil {
		t.Fatal(err)
	}
}

// When the S3 server goes away after start-up, Put and Open fail with an
// error (the Handler answers 503), not ErrNotFound.
func TestS3ServerGone(t *testing.T) {
	srv := testvgw.Start(t)
	s, err := media.NewS3(ctx(t), srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	meta := media.Meta{ID: media.NewID(), Owner: "alice", Mime: "text/plain", Size: 2, SHA256: "00", Created: 1}
	if err := s.Put(ctx(t), meta, strings.NewReader("hi")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, _, err := s.Open(ctx(t), meta.ID); err == nil || errors.Is(err, media.ErrNotFound) {
		t.Errorf("open with the server gone: %v, want an error other than not found", err)
	}
	meta.ID = media.NewID()
	if err := s.Put(ctx(t), meta, strings.NewReader("hi")); err == nil {
		t.Error("put with the server gone: no error")
	}
}

// DeleteOwner deletes one owner's files and no other's, on both backends
// [IM-8.3-5].
func TestDeleteOwner(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			put := func(owner string) string {
				meta := media.Meta{ID: media.NewID(), Owner: owner, Mime: "text/plain", Size: 2, SHA256: strings.Repeat("ab", 32),
					Created: time.Now().UnixMilli()}
				if err := b.Put(ctx(t), meta, strings.NewReader("hi")); err != nil {
					t.Fatal(err)
				}
				return meta.ID
			}
			a1, a2, bob := put("alice"), put("alice"), put("bob")
			n, err := b.(media.OwnerEraser).DeleteOwner(ctx(t), "alice")
			if err != nil || n != 2 {
				t.Fatalf("DeleteOwner = %d, %v; want 2", n, err)
			}
			for _, id := range []string{a1, a2} {
				if _, _, err := b.Open(ctx(t), id); !errors.Is(err, media.ErrNotFound) {
					t.Errorf("alice's %s after DeleteOwner: %v; want ErrNotFound", id, err)
				}
			}
			obj, _, err := b.Open(ctx(t), bob)
			if err != nil {
				t.Fatalf("bob's file after alice's deletion: %v", err)
			}
			obj.Close()
		})
	}
}
