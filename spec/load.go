package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigName is the file name of an OCI runtime config inside a bundle.
const ConfigName = "config.json"

// FieldError is a problem with one field of one file.
type FieldError struct {
	File  string
	Field string
	Msg   string
}

// Error is one line: a value quoted from the file (a path with a newline)
// shows its line breaks escaped.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return oneLine.Replace(e.File + ": " + e.Msg)
	}
	return oneLine.Replace(e.File + ": " + e.Field + ": " + e.Msg)
}

var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// Load reads and validates bundle/config.json. bundle may be relative; the
// returned error names the absolute path of the config file.
func Load(bundle string) (*specs.Spec, error) {
	abs, file, err := bundleConfig(bundle)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &FieldError{File: file, Msg: "no such file (is this an OCI bundle? 'nucleus spec' writes one)"}
		}
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return load(abs, file, data)
}

// LoadData parses and validates config.json bytes the caller already read
// from bundle (and checked, as --verify-attestation does), so what runs is
// exactly what was checked: the file is not read again.
func LoadData(bundle string, data []byte) (*specs.Spec, error) {
	abs, file, err := bundleConfig(bundle)
	if err != nil {
		return nil, err
	}
	return load(abs, file, data)
}

func bundleConfig(bundle string) (abs, file string, err error) {
	abs, err = filepath.Abs(bundle)
	if err != nil {
		return "", "", fmt.Errorf("bundle %s: %w", bundle, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("bundle %s: no such directory", abs)
		}
		return "", "", fmt.Errorf("bundle %s: %w", abs, err)
	}
	if !st.IsDir() {
		return "", "", fmt.Errorf("bundle %s: not a directory", abs)
	}
	return abs, filepath.Join(abs, ConfigName), nil
}

func load(abs, file string, data []byte) (*specs.Spec, error) {
	s, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	if err := Validate(file, abs, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Parse decodes config data; file is only used in error messages.
func Parse(file string, data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := decodeJSON(file, data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// LoadProcess reads a process.json as given to `exec --process`.
func LoadProcess(file string) (*specs.Process, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read process file %s: %w", file, err)
	}
	var p specs.Process
	if err := decodeJSON(file, data, &p); err != nil {
		return nil, err
	}
	if err := ValidateProcess(file, "", &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func decodeJSON(file string, data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return &FieldError{File: file, Msg: "empty file, expected a JSON object"}
	}
	if err := json.Unmarshal(data, v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			// Offset counts the bytes read through the offending one;
			// at the end of the input it points just past the last byte.
			at := syn.Offset - 1
			if syn.Error() == "unexpected end of JSON input" {
				at = syn.Offset
			}
			line, col := position(data, at)
			return &FieldError{File: file, Msg: fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, syn)}
		case errors.As(err, &typ):
			field := typ.Field
			if field == "" {
				field = "(top level)"
			}
			return &FieldError{File: file, Field: field, Msg: fmt.Sprintf("expected %s, got JSON %s", jsonType(typ.Type), typ.Value)}
		default:
			return &FieldError{File: file, Msg: "invalid JSON: " + err.Error()}
		}
	}
	return nil
}

// jsonType names the JSON a Go type decodes from, as a config's author
// thinks of it ("an array of strings", not "[]string").
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return jsonType(t.Elem())
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if k := t.Elem().Kind(); k == reflect.Slice || k == reflect.Array {
			return "an array of arrays"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonType(t.Elem()), "an "), "a ") + "s"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// position gives the 1-based line and column of the byte at offset.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Validate checks what a runtime needs from a config before it creates
// anything, so bad input never leaves state behind. bundle is the absolute
// bundle directory that relative paths are resolved against.
func Validate(file, bundle string, s *specs.Spec) error {
	fe := func(field, format string, a ...any) error {
		return &FieldError{File: file, Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if s.Version == "" {
		return fe("ociVersion", "must be set (e.g. %q)", specs.Version)
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return fe("ociVersion", "unsupported version %q, want 1.x", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return fe("root.path", "must be set")
	}
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	st, err := os.Stat(rootfs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fe("root.path", "%s: no such directory", rootfs)
		}
		return fe("root.path", "%v", err)
	}
	if !st.IsDir() {
		return fe("root.path", "%s: not a directory", rootfs)
	}
	if s.Process == nil {
		return fe("process", "must be set")
	}
	if err := ValidateProcess(file, "process.", s.Process); err != nil {
		return err
	}
	for i, m := range s.Mounts {
		if m.Destination == "" {
			return fe(fmt.Sprintf("mounts[%d].destination", i), "must be set")
		}
	}
	if s.Linux != nil {
		seen := map[specs.LinuxNamespaceType]bool{}
		for i, ns := range s.Linux.Namespaces {
			switch ns.Type {
			case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
				specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
			default:
				return fe(fmt.Sprintf("linux.namespaces[%d].type", i), "unknown namespace type %q", ns.Type)
			}
			if seen[ns.Type] {
				return fe(fmt.Sprintf("linux.namespaces[%d].type", i), "namespace %q listed twice", ns.Type)
			}
			seen[ns.Type] = true
		}
		if r := s.Linux.Resources; r != nil {
			if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit < -1 {
				return fe("linux.resources.memory.limit", "must be -1 (unlimited) or a positive byte count, got %d", *r.Memory.Limit)
			}
			if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit < -1 {
				return fe("linux.resources.pids.limit", "must be -1 (unlimited) or positive, got %d", *r.Pids.Limit)
			}
		}
	}
	if s.Hostname != "" && !hasNamespace(s, specs.UTSNamespace) {
		return fe("hostname", "set, but linux.namespaces has no uts namespace to set it in")
	}
	return nil
}

// ValidateProcess checks a process object; prefix is the JSON path to it.
func ValidateProcess(file, prefix string, p *specs.Process) error {
	fe := func(field, format string, a ...any) error {
		return &FieldError{File: file, Field: prefix + field, Msg: fmt.Sprintf(format, a...)}
	}
	if len(p.Args) == 0 {
		return fe("args", "must not be empty")
	}
	if len(p.Args) > 0 && p.Args[0] == "" {
		return fe("args[0]", "must not be empty")
	}
	if p.Cwd == "" {
		return fe("cwd", "must be set")
	}
	if !filepath.IsAbs(p.Cwd) {
		return fe("cwd", "%q is not an absolute path", p.Cwd)
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fe(fmt.Sprintf("env[%d]", i), "%q is not KEY=VALUE", e)
		}
	}
	for i, rl := range p.Rlimits {
		if _, ok := RlimitNames[rl.Type]; !ok {
			return fe(fmt.Sprintf("rlimits[%d].type", i), "unknown rlimit %q", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return fe(fmt.Sprintf("rlimits[%d]", i), "soft limit %d above hard limit %d", rl.Soft, rl.Hard)
		}
	}
	return validateCapabilities(file, prefix, p.Capabilities)
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}
