package native

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"

	"github.com/containerd/console"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"golang.org/x/sys/unix"
)

// stdio owns the host side of a process's standard streams: pipes we copy
// to and from, a pty master we relay, or nothing when the caller's own
// descriptors are handed straight to the container (detached).
type stdio struct {
	epoller     *console.Epoller
	console     *console.EpollConsole
	hostConsole console.Console
	closers     []io.Closer
	postStart   []io.Closer
	wg          sync.WaitGroup
	consoleC    chan error
}

func setupIO(process *libcontainer.Process, container *libcontainer.Container, createTTY, detach bool, sockpath string, streams *engine.Stdio, noTerminal bool) (_ *stdio, retErr error) {
	if createTTY {
		process.Stdin, process.Stdout, process.Stderr = nil, nil, nil
		t := &stdio{}
		if !detach {
			if err := t.initHostConsole(); err != nil {
				return nil, fmt.Errorf("process.terminal: %w", err)
			}
			parent, child, err := utils.NewSockPair("console")
			if err != nil {
				return nil, err
			}
			process.ConsoleSocket = child
			t.postStart = append(t.postStart, parent, child)
			t.consoleC = make(chan error, 1)
			go func() { t.consoleC <- t.recvtty(parent) }()
			return t, nil
		}
		// The caller (conmon, the containerd shim) receives the pty master.
		conn, err := net.Dial("unix", sockpath)
		if err != nil {
			return nil, opterr.Errorf("console-socket", "%s: %w", sockpath, err)
		}
		defer func() {
			if retErr != nil {
				conn.Close()
			}
		}()
		t.postStart = append(t.postStart, conn)
		socket, err := conn.(*net.UnixConn).File()
		if err != nil {
			return nil, opterr.Errorf("console-socket", "%s: %w", sockpath, err)
		}
		t.postStart = append(t.postStart, socket)
		process.ConsoleSocket = socket
		return t, nil
	}
	if detach {
		// The caller gave us the stdio it wants the container to have.
		process.Stdin, process.Stdout, process.Stderr = os.Stdin, os.Stdout, os.Stderr
		if streams != nil {
			// Handed over as they are: nothing of ours stays to copy.
			in, inOK := streams.In.(*os.File)
			out, outOK := streams.Out.(*os.File)
			errOut, errOK := streams.Err.(*os.File)
			if !inOK || !outOK || !errOK {
				return nil, errors.New("a detached process's streams must be files")
			}
			process.Stdin, process.Stdout, process.Stderr = in, out, errOut
		}
		t := &stdio{}
		if noTerminal {
			if err := t.withholdTerminal(process); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	config := container.Config()
	rootuid, err := config.HostRootUID()
	if err != nil {
		return nil, err
	}
	rootgid, err := config.HostRootGID()
	if err != nil {
		return nil, err
	}
	return setupPipes(process, rootuid, rootgid, streams)
}

// setupPipes gives the process pipes owned by the container's root and
// copies them to and from ours, so the process never holds our terminal or
// files directly.
func setupPipes(p *libcontainer.Process, rootuid, rootgid int, streams *engine.Stdio) (*stdio, error) {
	var in io.Reader = os.Stdin
	var out, errOut io.Writer = os.Stdout, os.Stderr
	if streams != nil {
		in, out, errOut = streams.In, streams.Out, streams.Err
		if in == nil {
			in = eofReader{}
		}
		if out == nil {
			out = io.Discard
		}
		if errOut == nil {
			errOut = io.Discard
		}
	}
	i, err := p.InitializeIO(rootuid, rootgid)
	if err != nil {
		return nil, fmt.Errorf("set up stdio pipes: %w", err)
	}
	t := &stdio{closers: []io.Closer{i.Stdin, i.Stdout, i.Stderr}}
	for _, s := range []any{p.Stdin, p.Stdout, p.Stderr} {
		if c, ok := s.(io.Closer); ok {
			t.postStart = append(t.postStart, c)
		}
	}
	go func() {
		_, _ = io.Copy(i.Stdin, in)
		_ = i.Stdin.Close()
	}()
	t.wg.Add(2)
	go t.copyIO(out, i.Stdout)
	go t.copyIO(errOut, i.Stderr)
	return t, nil
}

// withholdTerminal replaces each of the process's standard descriptors
// that is a terminal with /dev/null.
func (t *stdio) withholdTerminal(p *libcontainer.Process) error {
	var null *os.File
	streams := []struct {
		get func() any
		set func(*os.File)
	}{
		{func() any { return p.Stdin }, func(f *os.File) { p.Stdin = f }},
		{func() any { return p.Stdout }, func(f *os.File) { p.Stdout = f }},
		{func() any { return p.Stderr }, func(f *os.File) { p.Stderr = f }},
	}
	for _, s := range streams {
		f, ok := s.get().(*os.File)
		if !ok {
			continue
		}
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
			continue
		}
		if null == nil {
			var err error
			if null, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
				return err
			}
			t.postStart = append(t.postStart, null)
		}
		s.set(null)
	}
	return nil
}

// eofReader is an empty stdin.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func (t *stdio) copyIO(w io.Writer, r io.ReadCloser) {
	defer t.wg.Done()
	_, _ = io.Copy(w, r)
	_ = r.Close()
}

func (t *stdio) initHostConsole() error {
	for _, s := range []*os.File{os.Stderr, os.Stdout, os.Stdin} {
		c, err := console.ConsoleFromFile(s)
		if err == nil {
			t.hostConsole = c
			return nil
		}
		if !errors.Is(err, console.ErrNotAConsole) {
			return fmt.Errorf("get console: %w", err)
		}
	}
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return fmt.Errorf("no terminal to attach to (stdin, stdout, stderr and /dev/tty): %w", err)
	}
	c, err := console.ConsoleFromFile(tty)
	if err != nil {
		return fmt.Errorf("get console: %w", err)
	}
	t.hostConsole = c
	return nil
}

func (t *stdio) recvtty(socket *os.File) (retErr error) {
	//lint:ignore SA1019 its replacement (runc's cmsg) is internal to runc
	f, err := utils.RecvFile(socket)
	if err != nil {
		return err
	}
	cons, err := console.ConsoleFromFile(f)
	if err != nil {
		return err
	}
	if err := console.ClearONLCR(cons.Fd()); err != nil {
		return err
	}
	epoller, err := console.NewEpoller()
	if err != nil {
		return err
	}
	epollConsole, err := epoller.Add(cons)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			_ = epollConsole.Close()
		}
	}()
	go func() { _ = epoller.Wait() }()
	go func() { _, _ = io.Copy(epollConsole, os.Stdin) }()
	t.wg.Add(1)
	go t.copyIO(os.Stdout, epollConsole)
	if err := t.hostConsole.SetRaw(); err != nil {
		return fmt.Errorf("set terminal raw: %w", err)
	}
	go restoreOnInterrupt(t.hostConsole)
	t.epoller = epoller
	t.console = epollConsole
	t.closers = []io.Closer{epollConsole}
	return nil
}

func restoreOnInterrupt(c console.Console) {
	sigchan := make(chan os.Signal, 1)
	signal.Notify(sigchan, os.Interrupt)
	<-sigchan
	_ = c.Reset()
	os.Exit(0)
}

func (t *stdio) waitConsole() error {
	if t.consoleC != nil {
		return <-t.consoleC
	}
	return nil
}

// closePostStart drops our copies of descriptors the process now holds.
func (t *stdio) closePostStart() {
	for _, c := range t.postStart {
		_ = c.Close()
	}
	t.postStart = nil
}

// Close waits for all output to be copied and restores the terminal.
func (t *stdio) Close() {
	t.closePostStart()
	if t.console != nil && t.epoller != nil {
		_ = t.console.Shutdown(t.epoller.CloseConsole)
	}
	t.wg.Wait()
	for _, c := range t.closers {
		_ = c.Close()
	}
	if t.hostConsole != nil {
		_ = t.hostConsole.Reset()
	}
}

func (t *stdio) resize() error {
	if t.console == nil || t.hostConsole == nil {
		return nil
	}
	return t.console.ResizeFrom(t.hostConsole)
}
