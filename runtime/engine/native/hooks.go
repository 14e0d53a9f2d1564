package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// The runtime-spec's lifecycle (runtime.md, v1.3.0, the version nucleus
// implements) and libcontainer 1.5 disagree on when the poststart hooks
// run, what state they see and what a failing poststop hook does:
//
//   - libcontainer runs poststart inside create, with the container
//     "created"; the spec runs them after the user process started (step
//     9, after start at step 6) and "before the start operation returns"
//     (config.md), when the container is running.
//   - On a failing poststart hook both agree since v1.3.0: "the runtime
//     MUST generate an error, stop the container, and continue the
//     lifecycle at step 12" (destroy, then the poststop hooks).
//   - libcontainer fails the delete when a poststop hook fails; the spec
//     says "the runtime MUST log a warning, but the remaining hooks and
//     lifecycle continue as if the hook had succeeded".
//
// So both lists are taken out of libcontainer's config and kept next to
// its state (laterHooksFile, removed with the state dir); nucleus runs
// them itself. The hooks that must run inside create (prestart,
// createRuntime, createContainer, startContainer) stay libcontainer's:
// only it knows the moment between namespace setup and pivot_root.
const laterHooksFile = "nucleus-hooks.json"

// takeLaterHooks removes the poststart and poststop hooks from config and
// returns them. It also makes the state given to the prestart and
// createRuntime hooks say "created" rather than libcontainer's
// "creating" (runtime-tools' hooks_stdin checks it): they run after the container's environment was created
// (lifecycle step 2), and runtime.md's state defines "creating" as step 2
// and "created" as "the runtime has finished the create operation (after
// step 2 in the lifecycle)".
func takeLaterHooks(config *configs.Config) configs.Hooks {
	if config.Hooks == nil {
		return nil
	}
	later := configs.Hooks{}
	for _, name := range []configs.HookName{configs.Poststart, configs.Poststop} {
		if len(config.Hooks[name]) > 0 {
			later[name] = config.Hooks[name]
		}
		delete(config.Hooks, name)
	}
	// libcontainer writes the state to a hook's stdin itself; each of
	// these hooks goes through this binary's HookStateCommand, which
	// rewrites the status and execs the hook (a plain command hook, so
	// it serializes with the config like any other).
	self, err := os.Executable()
	if err != nil {
		return later
	}
	for _, name := range []configs.HookName{configs.Prestart, configs.CreateRuntime} {
		for i, h := range config.Hooks[name] {
			ch, ok := h.(configs.CommandHook)
			if !ok || ch.Command == nil {
				continue
			}
			argv := ch.Args
			if len(argv) == 0 {
				argv = []string{ch.Path}
			}
			relay := *ch.Command
			relay.Path = self
			relay.Args = append([]string{"nucleus", HookStateCommand, string(specs.StateCreated), ch.Path}, argv...)
			config.Hooks[name][i] = configs.NewCommandHook(&relay)
		}
	}
	return later
}

// HookStateCommand is the hidden command that runs a hook with the
// container state on its stdin changed to another status:
// `nucleus hook-state STATUS PATH ARGV0 ARGS...`.
const HookStateCommand = "hook-state"

// HookStateMain is HookStateCommand; it execs the hook or exits 127.
func HookStateMain(args []string) {
	err := hookState(args)
	fmt.Fprintf(os.Stderr, "nucleus %s: %v\n", HookStateCommand, err)
	os.Exit(127)
}

// hookState returns only when it could not exec the hook.
func hookState(args []string) error {
	if len(args) < 3 {
		return errors.New("usage: STATUS PATH ARGV0 [ARGS...]")
	}
	status, path, argv := args[0], args[1], args[2:]
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	// Every other field goes on as it came.
	var st map[string]json.RawMessage
	if err := json.Unmarshal(in, &st); err != nil {
		return fmt.Errorf("state on stdin: %w", err)
	}
	st["status"], _ = json.Marshal(status)
	out, err := json.Marshal(st)
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("hook-state", 0)
	if err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	if _, err := unix.Write(fd, out); err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	if err := unix.Dup3(fd, 0, 0); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	unix.Close(fd)
	return fmt.Errorf("exec %s: %w", path, unix.Exec(path, argv, os.Environ()))
}

func saveLaterHooks(stateDir string, hooks configs.Hooks) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(&hooks)
	if err != nil {
		return fmt.Errorf("hooks: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, laterHooksFile), data, 0o600); err != nil {
		return fmt.Errorf("hooks: %w", err)
	}
	return nil
}

// loadLaterHooks reads what saveLaterHooks wrote; a container without
// such hooks has no file.
func loadLaterHooks(stateDir string) (configs.Hooks, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, laterHooksFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hooks: %w", err)
	}
	var hooks configs.Hooks
	if err := json.Unmarshal(data, &hooks); err != nil {
		return nil, fmt.Errorf("hooks: %s: %w", filepath.Join(stateDir, laterHooksFile), err)
	}
	return hooks, nil
}

// runWarnOnly runs every hook of the list in order; a failing one is a
// warning and the next runs anyway (runtime.md, step 13).
func runWarnOnly(id string, hooks configs.Hooks, name configs.HookName, s *specs.State) {
	for i, h := range hooks[name] {
		if err := h.Run(s); err != nil {
			logrus.Warnf("container %s: %s hook #%d failed (the lifecycle goes on, as the runtime-spec requires): %v", id, name, i, err)
		}
	}
}

// poststartHooks prepares the poststart hooks of a container whose init
// waits for start; call it before letting the init go (Exec), and the
// returned function after. That runs the hooks once the init has exec'd
// the user process (config.md: "after the user-specified process is
// executed but before the start operation returns"); libcontainer's Exec
// returns when the init read the go-ahead, a moment before its execve. The
// first hook that fails ends the list with its error; the caller stops and
// removes the container (runtime.md, step 9).
func poststartHooks(stateDir string, c *libcontainer.Container) (run func() error) {
	hooks, err := loadLaterHooks(stateDir)
	if err != nil {
		return func() error { return err }
	}
	if len(hooks[configs.Poststart]) == 0 {
		return func() error { return nil }
	}
	pid := 0
	if st, err := c.State(); err == nil {
		pid = st.InitProcessPid
	}
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	initExe, _ := os.Readlink(exe)
	return func() error {
		// The exe link changes at the execve; a process that is gone
		// (a short command) has no link left.
		for deadline := time.Now().Add(5 * time.Second); pid > 0 && time.Now().Before(deadline); {
			if now, err := os.Readlink(exe); err != nil || now != initExe {
				break
			}
			time.Sleep(time.Millisecond)
		}
		s, err := c.OCIState()
		if err != nil {
			return fmt.Errorf("poststart hooks: %w", err)
		}
		// The process may be done already; the hooks still see the
		// container as start left it, running, with its pid.
		s.Status = specs.StateRunning
		s.Pid = pid
		return hooks.Run(configs.Poststart, s)
	}
}

// poststopHooks reads the poststop hooks and the state to give them,
// before the container's state dir is removed; run calls them after.
func poststopHooks(stateDir string, c *libcontainer.Container) (run func()) {
	hooks, err := loadLaterHooks(stateDir)
	if err != nil {
		logrus.Warnf("container %s: %v", c.ID(), err)
		return func() {}
	}
	if len(hooks[configs.Poststop]) == 0 {
		return func() {}
	}
	s, err := c.OCIState()
	if err != nil {
		logrus.Warnf("container %s: poststop hooks: %v", c.ID(), err)
		return func() {}
	}
	s.Status = specs.StateStopped
	s.Pid = 0
	return func() { runWarnOnly(c.ID(), hooks, configs.Poststop, s) }
}
