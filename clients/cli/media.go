package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/protocol"
)

// httpBase is the server's HTTP API: the flag's value, else port 8080 on
// the host of --server.
func (e *env) httpBase(flagValue string) (string, error) {
	if flagValue != "" {
		return strings.TrimSuffix(flagValue, "/"), nil
	}
	u, err := sdk.ParseServer(e.g.server)
	if err != nil {
		return "", usageErr(err)
	}
	return "http://" + net.JoinHostPort(u.Hostname(), "8080"), nil
}

// httpFlag registers --http on fs.
func httpFlag(fs *flag.FlagSet) *string {
	return fs.String("http", os.Getenv("MQIM_HTTP"), "the server's HTTP API (env MQIM_HTTP; default http://<server host>:8080)")
}

// attachment uploads path and returns the message to send for it
// [IM-12.1]: image or video by its media type, else file.
func (e *env) attachment(ctx context.Context, c *sdk.Client, path, base, caption string) (string, map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("send --file: %w", err)
	}
	defer f.Close()
	if base, err = e.httpBase(base); err != nil {
		return "", nil, err
	}
	name := filepath.Base(path)
	mt := mime.TypeByExtension(filepath.Ext(name))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i] // the charset parameter of text types
	}
	up, err := c.Upload(ctx, base, name, mt, f)
	if err != nil {
		return "", nil, fmt.Errorf("upload %s to %s: %w", path, base, err)
	}
	typ := protocol.TypeFile
	switch major, _, _ := strings.Cut(up.Mime, "/"); major {
	case "image":
		typ = protocol.TypeImage
	case "video":
		typ = protocol.TypeVideo
	}
	body := map[string]any{"url": up.URL, "mime": up.Mime, "size": up.Size, "sha256": up.SHA256, "name": name}
	if caption != "" {
		body["caption"] = caption
	}
	return typ, body, nil
}

// download runs "mqim download URL|ID": GET /v1/media/{id} with the
// user's token [IM-12.2], into a file (or stdout with -o -), checked
// against the SHA-256 the server states.
func (e *env) download(ctx context.Context, args []string) error {
	fs := e.flags("download", "URL|MEDIA-ID")
	out := fs.String("o", "", "write to this file (- for stdout; default: the attachment's name, else its id, in the current directory)")
	httpBase := httpFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr(errors.New("download: give the attachment's url (body.url of the message) or its media id"))
	}
	base, err := e.httpBase(*httpBase)
	if err != nil {
		return err
	}
	target, err := mediaURL(base, pos[0])
	if err != nil {
		return usageErr(fmt.Errorf("download: %w", err))
	}
	_, tok, err := e.credentials("")
	if err != nil {
		return err
	}
	resp, err := httpDo(ctx, http.MethodGet, target, tok, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", target, err)
	}
	defer resp.Body.Close()

	path := *out
	if path == "" {
		_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
		path = filepath.Base(params["filename"]) // never a path the server chose
		if path == "." || path == ".." || path == "/" || path == "" {
			path = filepath.Base(strings.TrimSuffix(target, "/"))
		}
	}
	var w io.Writer = e.stdout
	var f *os.File
	if path != "-" {
		// O_EXCL: a download never replaces a file.
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return fmt.Errorf("download: %w (choose another with -o)", err)
		}
		w = f
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want := resp.Header.Get("X-Mqim-Sha256"); err == nil && want != "" && want != sum {
		err = fmt.Errorf("SHA-256 %s, the server says %s", sum, want)
	}
	if err != nil {
		if f != nil {
			os.Remove(path)
		}
		return fmt.Errorf("download %s: %w", target, err)
	}
	if path == "-" {
		return nil
	}
	return e.out(struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		Mime   string `json:"mime"`
		SHA256 string `json:"sha256"`
	}{path, n, resp.Header.Get("Content-Type"), sum},
		fmt.Sprintf("saved %s (%s, %s)", path, byteSize(float64(n)), resp.Header.Get("Content-Type")))
}

// mediaURL resolves an attachment reference against the HTTP API at base:
// a media id, a /v1/media/ path, or an absolute URL of that server. The
// user's token goes only to that server, never to a host a message names.
func mediaURL(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil || b.Host == "" {
		return "", fmt.Errorf("bad --http %q", base)
	}
	if !strings.Contains(ref, "/") {
		if !protocol.ValidID(ref) {
			return "", fmt.Errorf("%q is neither a url nor a media id", ref)
		}
		return base + "/v1/media/" + ref, nil
	}
	u, err := b.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("bad url %q: %w", ref, err)
	}
	if u.Host != b.Host || u.Scheme != b.Scheme {
		return "", fmt.Errorf("%s is not on this server's HTTP API (%s): the token is not sent elsewhere; pass --http if it is", ref, base)
	}
	if !strings.HasPrefix(u.Path, "/v1/media/") {
		return "", fmt.Errorf("%s is not an attachment url (/v1/media/…)", ref)
	}
	return u.String(), nil
}

// httpDo sends a request with a bearer token; a status other than 2xx is
// an error with the server's code and message [IM-8.2-1].
func httpDo(ctx context.Context, method, target, tok string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		Error *protocol.Error `json:"error"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e) == nil && e.Error != nil {
		return nil, fmt.Errorf("HTTP %d: %w", resp.StatusCode, &sdk.Error{Code: e.Error.Code, Message: e.Error.Message})
	}
	return nil, fmt.Errorf("HTTP %s", resp.Status)
}
