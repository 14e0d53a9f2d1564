package engine

import (
	"io"
	"os"
	"time"

	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/policy"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CreateOptions are the inputs of create and run, as runc's flags name them.
type CreateOptions struct {
	ID string
	// Bundle is the bundle directory; Spec is its loaded config.
	Bundle string
	Spec   *specs.Spec

	PidFile       string
	ConsoleSocket string
	PidfdSocket   string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int

	// Run only: Detach returns once the process started; Keep leaves the
	// stopped container's state for a later delete; NoSubreaper disables
	// reaping the container's process ourselves.
	Detach      bool
	Keep        bool
	NoSubreaper bool

	// Policy is what policy.Apply decided for Spec (nil: a plain OCI
	// bundle, run as runc would); Audit receives lifecycle events.
	Policy *policy.Plan
	Audit  *policy.Audit
	// KillOnInterrupt turns SIGINT/SIGTERM/SIGHUP to nucleus into SIGKILL
	// for the container (a one-shot sandbox must never outlive its caller).
	KillOnInterrupt bool

	// Engine runs the container: native (default) or gvisor (runsc).
	Engine Kind
	// Network, if set, is the container's network (nil: the bundle's
	// namespaces decide, as in runc). A bridged one is attached once the
	// container's init exists, before its process runs; the runtime
	// tears it down (network.Teardown).
	Network *network.Config
	// Stdio, for an attached run without a terminal, replaces nucleus's
	// own standard streams.
	Stdio *Stdio
	// Stage runs the container on a staged rootfs even outside a mode
	// (as every container in one is), so that nothing it mounts creates
	// a directory in the bundle: a sandbox never changes its bundle.
	Stage bool
	// Populate, if set, runs once the container's init exists and its
	// mounts are made, before its process runs (in create, before
	// start): it is given the init's host pid. An error ends the
	// container. Secrets are written into the container then.
	Populate func(pid int) error
	// Hold runs no workload: the container's init, once confined, waits
	// (reaping orphans) until signalled or until Spec.Process.Args[1]
	// seconds have passed (preexec.Record.Hold). Only a container in an
	// isolation mode on the native engine can hold.
	Hold bool
	// Supervisor, with Hold, is a listening SOCK_SEQPACKET socket (bound
	// in the state dir, outside the container) on which the held init
	// serves exec requests (package supervise).
	Supervisor *os.File
	// DeferLandlock, with Supervisor, confines each command the
	// supervisor starts with the Landlock rules, made just before its
	// exec, instead of the init (preexec.Record.DeferLandlock): a warm
	// pool's member, whose workspace may be mounted after it started.
	DeferLandlock bool
	// OnStart, for an attached run (native engine), is called once the
	// workload runs, with its init's host pid; the function it returns is
	// called once the workload has exited, before the container is
	// removed (a service's health monitor and sd_notify use the pair).
	OnStart func(pid int) (stop func())
}

// Stdio are the streams an attached process without a terminal is
// connected to, through pipes nucleus copies: a nil In is an empty
// stdin, a nil Out or Err discards. Without a Stdio the process gets
// nucleus's own streams.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// ExecOptions describe a process to start in a running container.
type ExecOptions struct {
	// Process, if set, is the whole process (from --process); otherwise the
	// container's own process is taken from its bundle and Args, Env, Cwd,
	// User and Tty override it.
	Process *specs.Process
	Args    []string
	Env     []string
	Cwd     string
	// User is "uid[:gid]".
	User           string
	AdditionalGids []uint32
	Tty            bool
	NoNewPrivs     *bool
	Caps           []string

	Detach        bool
	PidFile       string
	ConsoleSocket string
	PidfdSocket   string
	PreserveFDs   int
	IgnorePaused  bool
	// SubCgroups are runc's --cgroup values ("[ctrl:]path").
	SubCgroups []string
	// Stdio, for an attached process without a terminal, replaces
	// nucleus's own standard streams.
	Stdio *Stdio
}

// CheckpointOptions are runc's checkpoint and restore flags.
type CheckpointOptions struct {
	ImagePath  string // default: ./checkpoint
	WorkPath   string
	ParentPath string // relative to ImagePath

	LeaveRunning    bool
	TCPEstablished  bool
	TCPSkipInFlight bool
	LinkRemap       bool
	ExtUnixSk       bool
	ShellJob        bool
	FileLocks       bool
	PreDump         bool
	AutoDedup       bool
	LazyPages       bool
	StatusFd        int
	PageServer      string // ADDRESS:PORT
	// ManageCgroupsMode is soft, full, strict, ignore or "" (CRIU's default).
	ManageCgroupsMode string
	// EmptyNs lists namespaces to create but not restore ("network").
	EmptyNs         []string
	LsmProfile      string
	LsmMountContext string
}

// UpdateOptions are `update`'s inputs besides the resources themselves.
type UpdateOptions struct {
	// L3CacheSchema and MemBwSchema are Intel RDT schemata ("" = unchanged).
	L3CacheSchema string
	MemBwSchema   string
}

// NewUpdateResources returns the empty resource set that `update` fills from
// its flags or its --resources file: every section present, so that a
// section the caller leaves out means "unchanged", as in runc.
func NewUpdateResources() *specs.LinuxResources {
	checkBeforeUpdate := false
	return &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{CheckBeforeUpdate: &checkBeforeUpdate},
		CPU:     &specs.LinuxCPU{},
		BlockIO: &specs.LinuxBlockIO{},
		Pids:    &specs.LinuxPids{},
	}
}

// State is what `state` prints and `list --format json` lists, field for
// field as runc prints it, since tools parse it.
type State struct {
	Version        string            `json:"ociVersion"`
	ID             string            `json:"id"`
	InitProcessPid int               `json:"pid"`
	Status         string            `json:"status"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Created        time.Time         `json:"created"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Owner          string            `json:"owner"`
	// Error says why the container's state could not be read (list
	// reports such a container with Status "unknown" rather than leave
	// it out).
	Error string `json:"error,omitempty"`
}

// StatusUnknown is the Status of a container whose state can't be read.
const StatusUnknown = "unknown"

// PsOptions are ps's: the output format (table or json) and, for engines
// whose processes are host processes, ps(1) arguments.
type PsOptions struct {
	Format string
	Args   []string
}

// Normalize makes the paths of o absolute, once, before any engine (or
// libcontainer) sees them: they are relative
// to the caller's working directory.
func (o *CreateOptions) Normalize() error {
	return absPaths(map[string]*string{"pid-file": &o.PidFile, "console-socket": &o.ConsoleSocket, "pidfd-socket": &o.PidfdSocket})
}

// Normalize makes the paths of o absolute, as CreateOptions.Normalize.
func (o *ExecOptions) Normalize() error {
	return absPaths(map[string]*string{"pid-file": &o.PidFile, "console-socket": &o.ConsoleSocket, "pidfd-socket": &o.PidfdSocket})
}

func absPaths(paths map[string]*string) error {
	for option, p := range paths {
		abs, err := AbsPath(*p)
		if err != nil {
			return &OptionError{Option: option, Msg: err.Error()}
		}
		*p = abs
	}
	return nil
}
