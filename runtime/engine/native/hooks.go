package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// The runtime-spec's lifecycle (runtime.md) and libcontainer 1.5 disagree
// on when the poststart and poststop hooks run and what a failing one does:
//
//   - libcontainer runs poststart inside create; the spec runs it after the
//     user process started, as part of start ("The poststart hooks MUST be
//     invoked by the runtime" at step 9, after start at step 6), with the
//     container running.
//   - libcontainer kills the container when a poststart hook fails, and
//     fails the delete when a poststop hook fails; the spec says of both
//     "the runtime MUST log a warning, but the remaining hooks and
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
// "creating": they run after the container's environment was created
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
	// The wrappers live only in this process's config, which is where
	// libcontainer runs these two lists (in the parent, during create).
	for _, name := range []configs.HookName{configs.Prestart, configs.CreateRuntime} {
		for i, h := range config.Hooks[name] {
			config.Hooks[name][i] = configs.NewFunctionHook(func(s *specs.State) error {
				created := *s
				created.Status = specs.StateCreated
				return h.Run(&created)
			})
		}
	}
	return later
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
// warning and the next runs anyway (runtime.md, steps 9 and 13).
func runWarnOnly(id string, hooks configs.Hooks, name configs.HookName, s *specs.State) {
	for i, h := range hooks[name] {
		if err := h.Run(s); err != nil {
			logrus.Warnf("container %s: %s hook #%d failed (the lifecycle goes on, as the runtime-spec requires): %v", id, name, i, err)
		}
	}
}

// runPoststart runs the poststart hooks of a container whose user process
// was just started, before start (or run) returns.
func runPoststart(stateDir string, c *libcontainer.Container) {
	hooks, err := loadLaterHooks(stateDir)
	if err != nil {
		logrus.Warnf("container %s: %v", c.ID(), err)
		return
	}
	if len(hooks[configs.Poststart]) == 0 {
		return
	}
	s, err := c.OCIState()
	if err != nil {
		logrus.Warnf("container %s: poststart hooks: %v", c.ID(), err)
		return
	}
	// The process may be done already (a short command); the hooks still
	// see the container as start left it, running, with its pid.
	s.Status = specs.StateRunning
	if st, err := c.State(); err == nil {
		s.Pid = st.InitProcessPid
	}
	runWarnOnly(c.ID(), hooks, configs.Poststart, s)
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
