package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoMosquitto is returned by StartMosquitto when no mosquitto binary is
// on PATH (Debian package mosquitto).
var ErrNoMosquitto = errors.New("mosquitto is not installed (Debian: apt-get install mosquitto)")

// Proc is a reference broker running as a child process, so that its
// memory is its own.
type Proc struct {
	name string
	addr string
	cmd  *exec.Cmd
	done chan error // the process's exit
	dir  string     // removed on Close, if set
}

// Addr is the broker's MQTT address.
func (p *Proc) Addr() string { return p.addr }

// Target is the benchmark target for this broker, memory included.
func (p *Proc) Target() Target {
	t := BareTarget(p.addr)
	t.Name = p.name
	t.Memory = ProcMemory(p.cmd.Process.Pid)
	return t
}

// procCloseTimeout bounds Close: a reference broker that does not stop on
// SIGTERM within it is killed.
const procCloseTimeout = 5 * time.Second

// Close stops the process (SIGTERM, then SIGKILL after 5 s) and waits.
func (p *Proc) Close() error {
	defer func() {
		if p.dir != "" {
			os.RemoveAll(p.dir)
		}
	}()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(procCloseTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s: killed: not stopped %v after SIGTERM", p.name, procCloseTimeout)
	}
}

// StartBareProcess starts a bare broker in a child process: the command
// name args… must run bare.Serve on a free loopback port (the mqim-bare
// command).
func StartBareProcess(name string, args ...string) (*Proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bare broker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bare broker: %w", err)
	}
	p := &Proc{name: "bare", cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case line, ok := <-lines:
		if ok {
			p.addr = strings.TrimSpace(line)
			return p, nil
		}
	case <-time.After(30 * time.Second):
	}
	_ = p.Close()
	return nil, errors.New("bare broker: the child process did not report its address")
}

// StartMosquitto starts Mosquitto on a free loopback port with its default
// settings except: anonymous clients allowed, no persistence, no logging,
// no limit on queued messages per client (the default, 1,000, would drop
// most of the sync scenario's events) and none on messages in flight (the
// default, 20, is also the Receive Maximum it announces, below the
// generator's --inflight 100).
func StartMosquitto() (*Proc, error) {
	bin, err := MosquittoPath()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	dir, err := os.MkdirTemp("", "mqim-bench-mosquitto-")
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	os.Chmod(dir, 0o755) // mosquitto may drop root for its own user
	conf := filepath.Join(dir, "mosquitto.conf")
	err = os.WriteFile(conf, []byte("listener "+strconv.Itoa(port)+" 127.0.0.1\n"+
		"allow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\nmax_inflight_messages 0\n"), 0o644)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	p := &Proc{name: "mosquitto", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan error, 1), dir: dir}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			os.RemoveAll(dir)
			return nil, fmt.Errorf("mosquitto exited at start: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Close()
			return nil, fmt.Errorf("mosquitto: not listening on %s after 10s", p.addr)
		}
	}
}

// MosquittoPath finds the mosquitto binary: on PATH, or where Debian puts
// it (/usr/sbin, often not on a user's PATH); ErrNoMosquitto if neither.
func MosquittoPath() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	return "", ErrNoMosquitto
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
