// Package seccomp holds everything Nucleus knows about seccomp: the agent
// modes' built-in allowlist (with its argument filters on clone, socket,
// ioctl, prctl and personality), parsing of user profiles, generating a
// profile from traces, the tracer that records a container's syscalls, and
// compiling a profile to classic BPF once, into a verified cache the
// pre-exec step loads.
package seccomp
