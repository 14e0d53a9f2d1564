package dns

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Here is a resolver served from the calling process (ServeHere).
type Here struct {
	stop func()
}

// Stop ends a resolver ServeHere started. If containers of its root still
// have configs (started by other processes while it served), a resolver
// process takes over for them (Start): they keep their DNS.
func (h *Here) Stop() {
	if h != nil && h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// ServeHere serves root's resolver from this process (a one-shot
// `nucleus sandbox`, which lives as long as its container does), if
// none runs: no resolver process is started. Other processes' containers
// of the root find it running and are answered by it too. If a resolver
// runs already, ServeHere does nothing and that one answers. Call it
// after the container's config is written; call Stop once the
// container's network is torn down.
//
// Unlike the resolver process, it keeps the privileges of its process.
func ServeHere(root string, sets Sets) (*Here, error) {
	if err := os.MkdirAll(netDir(root), 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	unlockStart, err := startLock(root)
	if err != nil {
		return nil, fmt.Errorf("%w: lock: %v", ErrStart, err)
	}
	defer unlockStart()
	unlockPid, err := flock(pidPath(root), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return &Here{}, nil // a resolver serves root already
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	os.WriteFile(pidPath(root), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	logf, err := os.OpenFile(LogPath(root), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		unlockPid()
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	logger := log.New(logf, fmt.Sprintf("dns[sandbox %d]: ", os.Getpid()), log.LstdFlags|log.Lmsgprefix)
	logger.Printf("serving %s from the sandbox's process", root)
	roots := RootsDir
	if d := os.Getenv(rootsDirEnv); d != "" {
		roots = d
	}
	if err := register(roots, root); err != nil {
		logger.Printf("registering %s in %s: %v (containers of other state roots may get REFUSED here)", root, roots, err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			unregister(roots, root)
			unlockPid()
		})
	}
	r := &Resolver{Root: root, Sets: sets, Log: logger, Roots: roots,
		ExitLock: func() (func(bool), error) {
			u, err := startLock(root)
			if err != nil {
				return nil, err
			}
			return func(exiting bool) {
				if exiting {
					release()
				}
				u()
			}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ready := make(chan error, 1)
	go func() {
		r.Serve(ctx, func(err error) { ready <- err })
		close(done)
	}()
	if err := <-ready; err != nil {
		cancel()
		<-done
		release()
		logf.Close()
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	return &Here{stop: func() {
		cancel()
		<-done // its listeners are closed
		defer logf.Close()
		u, err := startLock(root)
		if err != nil {
			release()
			logger.Printf("lock: %v", err)
			return
		}
		release()
		_, n, _ := configs(root)
		u()
		if n > 0 {
			// Containers of other processes came while this one
			// served: a resolver process answers them now.
			logger.Printf("%d container configs left: handing over to a resolver process", n)
			if err := Start(root); err != nil {
				logger.Printf("%v", err)
			}
		}
	}}, nil
}
