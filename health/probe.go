package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/runtime/engine"
)

// Round runs every probe c configures against the container whose init
// is pid, stopping at the first failure. It runs in the probe child
// (Subprocess), which may change its threads' namespaces.
func Round(x Execer, id string, pid int, c Config) Result {
	c = c.WithDefaults()
	var r Result
	if c.TCPPort != 0 {
		if r = TCP(pid, c.TCPPort, c.Timeout); !r.OK {
			return r
		}
	}
	if c.HTTPPort != 0 {
		if r = HTTP(pid, c.HTTPPath, c.HTTPPort, c.Timeout); !r.OK {
			return r
		}
	}
	if c.Cmd != "" {
		r = Cmd(x, id, c.Cmd, c.Timeout)
	}
	return r
}

// dialIn connects to addr from inside the network namespace of pid. The
// socket is made on a thread that joined the namespace; that thread is
// never unlocked, so it ends with its goroutine and nothing else ever runs
// in the container's namespace.
func dialIn(pid int, addr string, timeout time.Duration) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		goruntime.LockOSThread()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			ch <- res{nil, fmt.Errorf("container network namespace: %w", err)}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, fmt.Errorf("join container network namespace: %w", err)}
			return
		}
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial("tcp", addr)
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// TCP connects to 127.0.0.1:port in the container.
func TCP(pid, port int, timeout time.Duration) Result {
	r := Result{Probe: "tcp " + strconv.Itoa(port)}
	c, err := dialIn(pid, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), timeout)
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	c.Close()
	r.OK = true
	return r
}

// HTTP gets http://127.0.0.1:port/path in the container: 2xx and 3xx pass
// (redirects are not followed).
func HTTP(pid int, path string, port int, timeout time.Duration) Result {
	r := Result{Probe: fmt.Sprintf("http %s:%d", path, port)}
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       func(ctx context.Context, _, addr string) (net.Conn, error) { return dialIn(pid, addr, timeout) },
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r.Detail = resp.Status
	r.OK = resp.StatusCode >= 200 && resp.StatusCode < 400
	return r
}

// Execer runs a process in a container (runtime.Runtime).
type Execer interface {
	Exec(id string, o engine.ExecOptions) (int, error)
}

// outputMax bounds the command output a result keeps (its tail).
const outputMax = 1024

// tail keeps the last outputMax bytes written.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > outputMax {
		t.buf = t.buf[len(t.buf)-outputMax:]
	}
	return len(p), nil
}

// Cmd runs /bin/sh -c cmd in container id through the engine's exec path
// (the container's confinement applies) and passes on exit status 0. Past
// timeout the process is killed.
func Cmd(x Execer, id, cmd string, timeout time.Duration) Result {
	r := Result{Probe: "cmd"}
	dir, err := os.MkdirTemp("", "nucleus-health-")
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	defer os.RemoveAll(dir)
	pidFile := filepath.Join(dir, "pid")
	var out tail
	var timedOut sync.Once
	expired := false
	done := make(chan struct{})
	timer := time.AfterFunc(timeout, func() {
		timedOut.Do(func() { expired = true })
		// The pid file is written once the process runs; until then
		// there is nothing to kill.
		for {
			if data, err := os.ReadFile(pidFile); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
					unix.Kill(pid, unix.SIGKILL)
					return
				}
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	status, err := x.Exec(id, engine.ExecOptions{
		Args:    []string{"/bin/sh", "-c", cmd},
		PidFile: pidFile,
		Stdio:   &engine.Stdio{Out: &out, Err: &out},
	})
	close(done)
	timer.Stop()
	// Once Do returns, a timeout that fired has set expired.
	timedOut.Do(func() {})
	detail := strings.TrimSpace(string(bytes.ToValidUTF8(out.buf, nil)))
	switch {
	case err != nil:
		r.Detail = err.Error()
	case expired:
		r.Detail = fmt.Sprintf("timed out after %s", timeout)
	case status != 0:
		r.Detail = fmt.Sprintf("exit status %d", status)
		if detail != "" {
			r.Detail += ": " + detail
		}
	default:
		r.OK = true
		r.Detail = detail
	}
	return r
}

// Subprocess returns a probe round that runs bin with args (the probe
// child, which prints one Result as JSON) and reads its answer. The exit
// status is not needed, so a reaper that takes the child first does no
// harm; past the context's deadline the child is killed.
func Subprocess(bin string, args []string) func(ctx context.Context) Result {
	return func(ctx context.Context) Result {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = probeEnv()
		cmd.Stderr = nil
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return Result{Detail: err.Error()}
		}
		if err := cmd.Start(); err != nil {
			return Result{Detail: fmt.Sprintf("start probe: %v", err)}
		}
		data, _ := io.ReadAll(io.LimitReader(stdout, 64<<10))
		werr := cmd.Wait()
		var r Result
		if err := json.Unmarshal(bytes.TrimSpace(data), &r); err != nil {
			if ctx.Err() != nil {
				return Result{Detail: "probe did not answer in time"}
			}
			if werr != nil && !errors.Is(werr, unix.ECHILD) {
				return Result{Detail: fmt.Sprintf("probe: %v", werr)}
			}
			return Result{Detail: fmt.Sprintf("probe: no answer (%q)", strings.TrimSpace(string(data)))}
		}
		return r
	}
}

// probeEnv is this process's environment without systemd's notification
// variables: only the service's own nucleus talks to systemd.
func probeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, kv)
	}
	return env
}
