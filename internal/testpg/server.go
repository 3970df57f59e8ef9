package testpg

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	execpkg "os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/internal/testdeps"
)

// Server is a PostgreSQL server of the test's own, on a free loopback port,
// which the test may stop and start again (fault tests). It needs the
// PostgreSQL server binaries (Debian: postgresql); as root it runs the
// server as the postgres user.
type Server struct {
	t      testing.TB
	bindir string
	dir    string
	port   int
	asPG   []string
}

// StartServer initialises and starts a server, removed when the test ends.
// Without PostgreSQL binaries the test is skipped (fails under scripts/test
// and CI: testdeps.Required).
func StartServer(t testing.TB) *Server {
	t.Helper()
	bindir := binDir()
	if bindir == "" {
		testdeps.Missing(t, "PostgreSQL server binaries (initdb, pg_ctl) not found (Debian: apt-get install postgresql)")
	}
	dir, err := os.MkdirTemp("", "mqim-pgserver-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bindir: bindir, dir: dir}
	if os.Geteuid() == 0 {
		// Postgres refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root but there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.asPG = []string{"runuser", "-u", "postgres", "--"}
	}
	t.Cleanup(func() {
		s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	})
	if out, err := s.cmd("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s.port = FreePort(t)
	s.Start()
	return s
}

func binDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	if p, err := execpkg.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// FreePort returns a loopback TCP port that is free now, for a server
// process the test starts later. It is picked below the kernel's ephemeral
// range (32768 and up on Linux), where the ports of outgoing connections and
// of ":0" listeners come from, so that another test running in parallel is
// unlikely to take it before the process binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := 20000 + mrand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port between 20000 and 32000")
	return 0
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) cmd(prog string, args ...string) *execpkg.Cmd {
	argv := append(append([]string{}, s.asPG...), filepath.Join(s.bindir, prog))
	argv = append(argv, args...)
	return execpkg.Command(argv[0], argv[1:]...)
}

func (s *Server) run(prog string, args ...string) ([]byte, error) {
	return s.cmd(prog, args...).CombinedOutput()
}

// URL is the connection string of the server's postgres database.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start starts the server and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	out, err := s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "postgres.log"), "-w", "-t", "60", "start",
		"-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c max_connections=200", s.port, s.dir))
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
		s.t.Fatalf("start postgres: %v\n%s\n%s", err, out, tail(log))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		c, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			c.Close(ctx)
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("postgres does not accept connections: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the server; immediate stops it the way a crash would.
func (s *Server) Stop(immediate bool) {
	s.t.Helper()
	mode := "fast"
	if immediate {
		mode = "immediate"
	}
	if out, err := s.run("pg_ctl", "-D", s.data(), "-m", mode, "-w", "stop"); err != nil {
		s.t.Fatalf("stop postgres: %v\n%s", err, out)
	}
}

func tail(b []byte) []byte {
	if i := bytes.LastIndex(b[:max(0, len(b)-2000)], []byte("\n")); i > 0 {
		return b[i+1:]
	}
	return b
}
