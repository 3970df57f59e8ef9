package migrations

import (
	"errors"
	"testing"
	"testing/fstest"
)

func TestApply(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
		"m/0003_c.sql": {Data: []byte("C")},
	}
	var ran []string
	err := Apply(fsys, "m", []string{"0002_b.sql"}, func(f File) error {
		ran = append(ran, f.Name+"="+f.SQL)
		return nil
	})
	if err != nil || len(ran) != 2 || ran[0] != "0001_a.sql=A" || ran[1] != "0003_c.sql=C" {
		t.Fatalf("ran %v, %v; want a then c", ran, err)
	}
	boom := errors.New("boom")
	err = Apply(fsys, "m", nil, func(f File) error { return boom })
	if !errors.Is(err, boom) || err.Error() != "0001_a.sql: boom" {
		t.Fatalf("failed migration: %v; want it named", err)
	}
	if err := Apply(fsys, "none", nil, func(File) error { return nil }); err == nil {
		t.Fatal("a missing directory: no error")
	}
}
