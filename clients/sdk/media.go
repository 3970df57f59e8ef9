package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/mqim/mqim/protocol"
)

// Upload is the result of an attachment upload [IM-12.2-1].
type Upload struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Mime   string `json:"mime"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Name   string `json:"name,omitempty"`
}

// Upload sends an attachment to the server's HTTP API at base (e.g.
// http://localhost:8080) with the client's token [IM-12.2]. An empty mime
// lets the server sniff the type. A refusal is an *Error (too_large,
// unsupported_media, …).
func (c *Client) Upload(ctx context.Context, base, name, mime string, body io.Reader) (Upload, error) {
	u := strings.TrimSuffix(base, "/") + "/v1/media"
	if name != "" {
		u += "?name=" + url.QueryEscape(name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return Upload{}, fmt.Errorf("mqim: upload: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	if mime != "" {
		req.Header.Set("Content-Type", mime)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Upload{}, fmt.Errorf("mqim: upload: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Upload
		Error *protocol.Error `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return Upload{}, fmt.Errorf("mqim: upload: HTTP %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusCreated {
		if out.Error == nil {
			return Upload{}, fmt.Errorf("mqim: upload: HTTP %d", resp.StatusCode)
		}
		return Upload{}, &Error{Code: out.Error.Code, Message: out.Error.Message}
	}
	return out.Upload, nil
}
