package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// DefaultS3Region is the region S3 requests are signed for when none is
// configured; most S3-compatible servers accept it.
const DefaultS3Region = "us-east-1"

// S3Config configures the S3 backend. Zero values mean the defaults noted.
type S3Config struct {
	// Endpoint is the server's URL, http:// or https:// with a host and an
	// optional port, no path ("https://s3.eu-west-1.amazonaws.com",
	// "http://127.0.0.1:7070"); required.
	Endpoint string
	Bucket   string // required; created if missing
	Region   string // zero: DefaultS3Region
	// AccessKey and SecretKey sign every request; both required. They are
	// never logged nor put in an error.
	AccessKey, SecretKey string
	// PathStyle addresses the bucket in the path (endpoint/bucket/key), as
	// most self-hosted servers need; otherwise the client library uses
	// virtual-hosted style (bucket.endpoint/key) where it knows the
	// endpoint supports it (AWS), and path style elsewhere.
	PathStyle bool
	// Transport is the HTTP transport; zero: the client library's, with
	// dial, TLS and response-header timeouts.
	Transport http.RoundTripper
}

// S3 is a Backend on an S3-compatible bucket: one object per file, named by
// its id, with its metadata as the object's Content-Type and user metadata.
// An object becomes visible whole when its PUT (or multipart upload)
// completes, so a reader never sees half a file; every node using the bucket
// serves every file.
type S3 struct {
	client *minio.Client
	bucket string
	desc   string
}

var _ Backend = (*S3)(nil)

// User metadata keys (x-amz-meta-…) of the fields of Meta that have no S3
// counterpart. Size is the object's size, Mime its Content-Type.
const (
	metaOwner   = "Mqim-Owner"
	metaSHA256  = "Mqim-Sha256"
	metaName    = "Mqim-Name" // path-escaped: header values are ASCII
	metaCreated = "Mqim-Created"
)

// NewS3 connects to the bucket of cfg: it checks that the endpoint answers
// and accepts the credentials, and creates the bucket if it does not exist,
// so that a wrong configuration is an error at start-up rather than at the
// first upload.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("S3 endpoint %q: want http://host[:port] or https://host[:port], without path or credentials", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("S3: a bucket is required")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("S3 bucket %q: %w", cfg.Bucket, err)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("S3: an access key and a secret key are required")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultS3Region
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    cfg.Transport,
		// A few retries ride out a blip; more would hold an upload (and a
		// start-up against a dead endpoint) for many seconds.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", cfg.Endpoint, err)
	}
	s := &S3{client: client, bucket: cfg.Bucket, desc: fmt.Sprintf("S3 bucket %s at %s", cfg.Bucket, cfg.Endpoint)}
	exists, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, s.startErr("", err)
	}
	if !exists {
		err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		// Several nodes starting at once may race to create it.
		if code := minio.ToErrorResponse(err).Code; err != nil && code != minio.BucketAlreadyOwnedByYou && code != minio.BucketAlreadyExists {
			return nil, s.startErr("create bucket: ", err)
		}
	}
	return s, nil
}

// startErr says what a failed start-up request (what: "" or "create
// bucket: ") means for the operator. The server's own code and message are
// kept: servers differ in how they refuse (versitygw answers an unknown
// access key with 404).
func (s *S3) startErr(what string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.Code == minio.AccessDenied || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch":
		return fmt.Errorf("%s: %scredentials refused (check the access key and secret key): %s", s.desc, what, resp.Code)
	case resp.StatusCode != 0:
		return fmt.Errorf("%s: %s%d %s: %s", s.desc, what, resp.StatusCode, resp.Code, resp.Message)
	}
	return fmt.Errorf("%s: %sunreachable: %w", s.desc, what, err)
}

// String describes the bucket for logs.
func (s *S3) String() string { return s.desc }

// Put uploads the file as one object, with its metadata.
func (s *S3) Put(ctx context.Context, meta Meta, r io.Reader) error {
	if !ValidID(meta.ID) {
		return fmt.Errorf("put media: invalid id %q", meta.ID)
	}
	_, err := s.client.PutObject(ctx, s.bucket, meta.ID, r, meta.Size, minio.PutObjectOptions{
		ContentType: meta.Mime,
		UserMetadata: map[string]string{
			metaOwner:   meta.Owner,
			metaSHA256:  meta.SHA256,
			metaName:    url.PathEscape(meta.Name),
			metaCreated: strconv.FormatInt(meta.Created, 10),
		},
	})
	if err != nil {
		return fmt.Errorf("put media %s to %s: %w", meta.ID, s.desc, err)
	}
	return nil
}

// Open reads the object's metadata (one HEAD request); the returned Object
// fetches the bytes when read, from the offset it was sought to (a ranged
// GET), and must be closed.
func (s *S3) Open(ctx context.Context, id string) (Object, Meta, error) {
	var meta Meta
	if !ValidID(id) {
		return nil, meta, ErrNotFound
	}
	obj, err := s.client.GetObject(ctx, s.bucket, id, minio.GetObjectOptions{})
	if err != nil {
		return nil, meta, fmt.Errorf("open media %s in %s: %w", id, s.desc, err)
	}
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, meta, ErrNotFound
		}
		return nil, meta, fmt.Errorf("open media %s in %s: %w", id, s.desc, err)
	}
	get := func(k string) string { return userMeta(info.UserMetadata, k) }
	name, err := url.PathUnescape(get(metaName))
	created, cerr := strconv.ParseInt(get(metaCreated), 10, 64)
	meta = Meta{ID: id, Owner: get(metaOwner), Mime: info.ContentType, Size: info.Size, SHA256: get(metaSHA256), Name: name, Created: created}
	if err != nil || cerr != nil || meta.SHA256 == "" || meta.Mime == "" {
		obj.Close()
		return nil, Meta{}, fmt.Errorf("open media %s in %s: the object lacks mqim's metadata", id, s.desc)
	}
	return obj, meta, nil
}

// userMeta is the user metadata value of key k (the server may change its
// case).
func userMeta(m map[string]string, k string) string {
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v
		}
	}
	return ""
}
