// Package mountcheck reads a container's mounts back from the kernel
// (its /proc/PID/mountinfo, before the workload runs) and checks that the
// flags the config planned hold: ro, nosuid, nodev and noexec, on every
// mount of the config and, for a recursive bind, on every mount it
// brought along from the host. A flag the runtime silently failed to
// apply (a tmpfs it mounted without ro, a host submount a bind copied
// with none of the bind's flags) is a mismatch.
package mountcheck

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Flags are the per-mount flags checked.
var Flags = []string{"ro", "nosuid", "nodev", "noexec"}

// Problem is one mount whose flags are not what was planned.
type Problem struct {
	// Mount is the mount point in the container; Planned the config
	// mount it belongs to (the same, or a recursive bind above it).
	Mount   string   `json:"mount"`
	Planned string   `json:"planned"`
	Missing []string `json:"missing,omitempty"`
	Has     string   `json:"has,omitempty"`
	// NotMounted: nothing is mounted where the config says.
	NotMounted bool `json:"not_mounted,omitempty"`
}

func (p Problem) String() string {
	if p.NotMounted {
		return p.Mount + ": not mounted"
	}
	s := fmt.Sprintf("%s: missing %s (has %s)", p.Mount, strings.Join(p.Missing, ","), p.Has)
	if p.Planned != p.Mount {
		s += " under " + p.Planned
	}
	return s
}

// Mount is one line of mountinfo: where and its per-mount options.
type Mount struct {
	Point   string
	Options []string
}

// Parse reads mountinfo; a mount point mounted over keeps the last
// (topmost) entry's place in the order but both are listed.
func Parse(mountinfo string) []Mount {
	var out []Mount
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		out = append(out, Mount{Point: Unescape(f[4]), Options: strings.Split(f[5], ",")})
	}
	return out
}

// Unescape decodes the octal escapes (\040 for a space) the kernel
// writes in mountinfo paths.
func Unescape(p string) string {
	if !strings.Contains(p, "\\") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+3 < len(p) {
			if n, err := strconv.ParseUint(p[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

type plan struct {
	dest      string
	flags     []string
	recursive bool
}

// planned is what s asks for, by destination (the last mount at a
// destination is the one that shows).
func planned(s *specs.Spec) map[string]plan {
	out := map[string]plan{}
	if s.Root != nil && s.Root.Readonly {
		out["/"] = plan{dest: "/", flags: []string{"ro"}}
	}
	for _, m := range s.Mounts {
		dest := path.Clean("/" + m.Destination)
		p := plan{dest: dest}
		for _, f := range Flags {
			if slices.Contains(m.Options, f) {
				p.flags = append(p.flags, f)
			}
		}
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		p.recursive = bind && slices.Contains(m.Options, "rbind")
		out[dest] = p
	}
	return out
}

// runtimeMounts are the mounts the runtime itself adds below the
// config's (masked and read-only paths, device nodes): not the
// config's, so not checked against it.
func runtimeMounts(s *specs.Spec) map[string]bool {
	out := map[string]bool{}
	if s.Linux == nil {
		return out
	}
	for _, p := range append(slices.Clone(s.Linux.MaskedPaths), s.Linux.ReadonlyPaths...) {
		out[path.Clean(p)] = true
	}
	for _, d := range s.Linux.Devices {
		out[path.Clean(d.Path)] = true
	}
	for _, d := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/random", "/dev/urandom"} {
		out[d] = true
	}
	return out
}

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Check compares the mounts read back with what s planned.
func Check(mounts []Mount, s *specs.Spec) []Problem {
	plans := planned(s)
	extra := runtimeMounts(s)
	top := map[string][]string{}
	for _, m := range mounts {
		top[m.Point] = m.Options
	}
	var problems []Problem
	missing := func(opts, want []string) []string {
		var miss []string
		for _, f := range want {
			if !slices.Contains(opts, f) {
				miss = append(miss, f)
			}
		}
		return miss
	}
	dests := make([]string, 0, len(plans))
	for d := range plans {
		dests = append(dests, d)
	}
	slices.Sort(dests)
	for _, d := range dests {
		p := plans[d]
		opts, ok := top[d]
		if !ok {
			problems = append(problems, Problem{Mount: d, Planned: d, NotMounted: true})
			continue
		}
		if miss := missing(opts, p.flags); len(miss) > 0 {
			problems = append(problems, Problem{Mount: d, Planned: d, Missing: miss, Has: strings.Join(opts, ",")})
		}
	}
	// What a recursive bind brought along from the host: every mount
	// below it that no deeper planned mount (nor the runtime) accounts
	// for must carry the bind's flags too.
	seen := map[string]bool{}
	for _, m := range mounts {
		if plans[m.Point].dest != "" || extra[m.Point] || seen[m.Point] {
			continue
		}
		owner := ""
		for _, d := range dests {
			if under(m.Point, d) && len(d) > len(owner) {
				owner = d
			}
		}
		p := plans[owner]
		if owner == "" || !p.recursive || len(p.flags) == 0 {
			continue
		}
		seen[m.Point] = true
		opts := top[m.Point]
		if miss := missing(opts, p.flags); len(miss) > 0 {
			problems = append(problems, Problem{Mount: m.Point, Planned: owner, Missing: miss, Has: strings.Join(opts, ",")})
		}
	}
	return problems
}
