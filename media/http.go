package media

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/protocol"
)

// DefaultMaxBytes is the default upload limit [IM-12.2-2].
const DefaultMaxBytes = 25 << 20

// DefaultAllowed are the default allowed media types [IM-12.2-2].
var DefaultAllowed = []string{"image/*", "audio/*", "video/*", "text/plain", "application/pdf", "application/zip", "application/octet-stream"}

// Config configures a Handler. Zero values mean the defaults noted.
type Config struct {
	Backend  Backend // required
	MaxBytes int64   // largest upload; zero: DefaultMaxBytes
	Allowed  []string
	// Auth returns the user of a request (a valid user token), or an error.
	Auth func(r *http.Request) (string, error) // required
	Log  *slog.Logger                          // zero: slog.Default()
	// Registerer gets the handler's metrics; zero: not registered.
	Registerer prometheus.Registerer
}

// Handler serves POST /v1/media and GET /v1/media/{id} [IM-12.2].
type Handler struct {
	cfg           Config
	storageErrors *prometheus.CounterVec // by op: put, open
}

// NewHandler returns a Handler.
func NewHandler(cfg Config) *Handler {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if len(cfg.Allowed) == 0 {
		cfg.Allowed = DefaultAllowed
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := &Handler{cfg: cfg, storageErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mqim_media_storage_errors_total",
		Help: "Attachment uploads (op=put) and downloads (op=open) that failed in the storage backend (answered 503).",
	}, []string{"op"})}
	for _, op := range []string{"put", "open"} {
		h.storageErrors.WithLabelValues(op)
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(h.storageErrors)
	}
	return h
}

// Register adds the handler's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/media", h.upload)
	mux.HandleFunc("GET /v1/media/{id}", h.get)
}

// Allowed reports whether media type mt matches the allowed list: an exact
// type or a "major/*" pattern.
func (h *Handler) Allowed(mt string) bool {
	major, _, _ := strings.Cut(mt, "/")
	for _, a := range h.cfg.Allowed {
		if a == mt || strings.HasSuffix(a, "/*") && strings.TrimSuffix(a, "/*") == major {
			return true
		}
	}
	return false
}

// Result is the body of a successful upload [IM-12.2-1].
type Result struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Mime   string `json:"mime"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Name   string `json:"name,omitempty"`
}

func (h *Handler) upload(w http.ResponseWriter, r *http.Request) {
	user, err := h.cfg.Auth(r)
	if err != nil {
		httpError(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "send a user token as Authorization: Bearer <token>")
		return
	}
	if r.ContentLength > h.cfg.MaxBytes {
		httpError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, "the limit is "+strconv.FormatInt(h.cfg.MaxBytes, 10)+" bytes")
		return
	}
	name := r.URL.Query().Get("name")
	if len(name) > 255 || !utf8.ValidString(name) || strings.ContainsAny(name, "/\\\x00\r\n\"") {
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "name must be a file name of at most 255 bytes")
		return
	}
	mt := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		parsed, _, err := mime.ParseMediaType(ct)
		if err != nil {
			httpError(w, http.StatusUnsupportedMediaType, protocol.CodeUnsupportedMedia, "invalid Content-Type")
			return
		}
		mt = parsed
	}
	if mt != "" && !h.Allowed(mt) {
		httpError(w, http.StatusUnsupportedMediaType, protocol.CodeUnsupportedMedia, "media type "+mt+" is not allowed")
		return
	}

	// Spool to a temporary file while hashing, so that the limit is checked
	// on the bytes actually sent, and the backend gets a complete file.
	spool, err := os.CreateTemp("", "mqim-upload-*")
	if err != nil {
		h.internal(w, "spool upload", err)
		return
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	sum := sha256.New()
	size, err := io.Copy(io.MultiWriter(spool, sum), http.MaxBytesReader(w, r.Body, h.cfg.MaxBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		httpError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, "the limit is "+strconv.FormatInt(h.cfg.MaxBytes, 10)+" bytes")
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "upload interrupted")
		return
	case size == 0:
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "empty upload")
		return
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		h.internal(w, "rewind upload", err)
		return
	}
	if mt == "" {
		// No Content-Type: the type is sniffed from the content [IM-12.2-2].
		head := make([]byte, 512)
		n, _ := io.ReadFull(spool, head)
		mt, _, _ = mime.ParseMediaType(http.DetectContentType(head[:n]))
		if !h.Allowed(mt) {
			httpError(w, http.StatusUnsupportedMediaType, protocol.CodeUnsupportedMedia, "media type "+mt+" is not allowed")
			return
		}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			h.internal(w, "rewind upload", err)
			return
		}
	}
	meta := Meta{ID: NewID(), Owner: user, Mime: mt, Size: size, SHA256: hex.EncodeToString(sum.Sum(nil)), Name: name, Created: nowMillis()}
	if err := h.cfg.Backend.Put(r.Context(), meta, spool); err != nil {
		h.storageErrors.WithLabelValues("put").Inc()
		h.cfg.Log.Warn("store upload failed", "user", user, "error", err)
		httpError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "media storage unavailable, retry")
		return
	}
	res := Result{ID: meta.ID, URL: baseURL(r) + protocol.MediaPath + meta.ID, Mime: meta.Mime, Size: meta.Size, SHA256: meta.SHA256, Name: name}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", protocol.MediaPath+meta.ID)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(res)
}

// baseURL is the scheme and host the client used to reach this server.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	if _, err := h.cfg.Auth(r); err != nil {
		httpError(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "send a user token as Authorization: Bearer <token>")
		return
	}
	obj, meta, err := h.cfg.Backend.Open(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		httpError(w, http.StatusNotFound, protocol.CodeNotFound, "no such media")
		return
	}
	if err != nil {
		h.storageErrors.WithLabelValues("open").Inc()
		h.cfg.Log.Warn("open media failed", "id", r.PathValue("id"), "error", err)
		httpError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "media storage unavailable, retry")
		return
	}
	defer obj.Close()
	w.Header().Set("Content-Type", meta.Mime)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "sandbox") // an uploaded file never runs as this origin
	w.Header().Set("ETag", `"`+meta.SHA256+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	w.Header().Set("X-Mqim-Sha256", meta.SHA256)
	// Only media a browser shows without running anything inline.
	disp := "attachment"
	if major, _, _ := strings.Cut(meta.Mime, "/"); (major == "image" || major == "audio" || major == "video") && meta.Mime != "image/svg+xml" {
		disp = "inline"
	}
	if meta.Name != "" {
		disp += `; filename="` + meta.Name + `"`
	}
	w.Header().Set("Content-Disposition", disp)
	http.ServeContent(w, r, "", msTime(meta.Created), obj)
}

func (h *Handler) internal(w http.ResponseWriter, what string, err error) {
	h.cfg.Log.Error(what, "error", err)
	httpError(w, http.StatusInternalServerError, protocol.CodeInternal, what+" failed")
}

func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]*protocol.Error{"error": {Code: code, Message: msg}})
}
