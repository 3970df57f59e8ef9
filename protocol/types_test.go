package protocol

import "testing"

// [IM-12.1-1] The body table per type, including MessagePack integer kinds.
func TestCheckBody(t *testing.T) {
	u := "https://x.example/a"
	cases := []struct {
		typ  string
		body map[string]any
		code string // "" = valid
	}{
		{TypeText, map[string]any{"text": "hi"}, ""},
		{TypeText, map[string]any{}, CodeBadRequest},
		{TypeImage, map[string]any{"url": u, "width": int8(3), "height": uint16(4), "size": int64(5)}, ""},
		{TypeImage, map[string]any{"url": u, "width": nil}, ""},
		{TypeImage, map[string]any{"url": "ftp://x/a"}, CodeBadRequest},
		{TypeImage, map[string]any{"url": "/v1/media/"}, CodeBadRequest},
		{TypeImage, map[string]any{"url": "/v1/media/ab", "thumbnail": "x"}, CodeBadRequest},
		{TypeVoice, map[string]any{"url": u, "duration": float32(1.5)}, ""},
		{TypeVoice, map[string]any{"url": u, "duration": -1}, CodeBadRequest},
		{TypeFile, map[string]any{"url": u, "name": ""}, CodeBadRequest},
		{TypeLocation, map[string]any{"lat": 0, "lon": -180.0}, ""},
		{TypeLocation, map[string]any{"lat": 0, "lon": 180.01}, CodeBadRequest},
		{TypeCustom, map[string]any{"anything": []any{1}}, ""},
		{"gif", map[string]any{}, CodeUnknownType},
	}
	for _, c := range cases {
		err := CheckBody(c.typ, c.body)
		if c.code == "" && err != nil || c.code != "" && (err == nil || err.Code != c.code) {
			t.Errorf("CheckBody(%s, %v) = %v, want %q", c.typ, c.body, err, c.code)
		}
	}
}

func TestExtErrorReasons(t *testing.T) {
	want := map[string]byte{CodeBlocked: 0x87, CodeNotAllowed: 0x87, CodeNotFound: 0x83}
	for code, r := range want {
		if got := (&Error{Code: code}).Reason(); got != r {
			t.Errorf("%s → %#x, want %#x", code, got, r)
		}
	}
}

// FuzzCheckBody: no body, however odd, makes the validator panic, and a
// body it accepts for a type with a url has a valid one [IM-12.1].
func FuzzCheckBody(f *testing.F) {
	for _, s := range []string{`{"url":"https://x/a","width":3}`, `{"lat":1,"lon":2}`, `{"url":"/v1/media/ab","duration":-0}`,
		`{"url":5}`, `{"name":"","url":"http://h"}`, `{"text":"hi"}`, `{}`} {
		for _, typ := range []string{TypeText, TypeImage, TypeVoice, TypeVideo, TypeFile, TypeLocation, TypeCustom, "x"} {
			f.Add(typ, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, typ string, payload []byte) {
		var body map[string]any
		if Decode(Detect(payload, ""), payload, &body) != nil || body == nil {
			return
		}
		if err := CheckBody(typ, body); err == nil && typ != TypeCustom && typ != TypeText && typ != TypeLocation {
			if u, _ := body["url"].(string); !ValidMediaURL(u) {
				t.Fatalf("accepted %s body %v with url %q", typ, body, u)
			}
		}
	})
}
