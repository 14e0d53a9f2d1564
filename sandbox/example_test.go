package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nucleus-run/nucleus/sandbox"
)

// exampleBundle is a busybox bundle and exampleRoot a state root, made by
// TestMain for the examples.
var exampleBundle, exampleRoot string

func TestMain(m *testing.M) {
	sandbox.Init()
	dir, err := os.MkdirTemp("", "sandbox-example-")
	if err != nil {
		panic(err)
	}
	// The sandbox's unprivileged root must reach the state root below it.
	if err := os.Chmod(dir, 0o711); err != nil {
		panic(err)
	}
	code := 0
	if why := makeBundle(dir); why != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "sandbox examples:", why)
			code = 1
		} else {
			fmt.Fprintln(os.Stderr, "sandbox examples skipped:", why)
		}
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func makeBundle(dir string) string {
	if os.Geteuid() != 0 {
		return "needs root (real containers)"
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "needs busybox-static"
	}
	exampleRoot = filepath.Join(dir, "root")
	exampleBundle = filepath.Join(dir, "bundle")
	bin := filepath.Join(exampleBundle, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err.Error()
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return err.Error()
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		return err.Error()
	}
	for _, applet := range []string{"sh", "cat", "echo", "id", "ls", "pwd", "grep", "touch", "stat", "umount", "mount", "ln", "cp", "chmod"} {
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			return err.Error()
		}
	}
	config := `{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}},
"root":{"path":"rootfs"},"mounts":[{"destination":"/proc","type":"proc","source":"proc"},
{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}],
"linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}`
	if err := os.WriteFile(filepath.Join(exampleBundle, "config.json"), []byte(config), 0o644); err != nil {
		return err.Error()
	}
	return ""
}

// A long-lived sandbox: start it, run commands in it, copy a file in and
// out, and close it.
func ExampleNew() {
	ctx := context.Background()
	sb, err := sandbox.New(ctx, sandbox.Options{Root: exampleRoot, Bundle: exampleBundle, TTL: 10 * time.Minute,
		Env: []string{"GREETING=hello"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sb.Close()

	var out bytes.Buffer
	res, err := sb.Exec(ctx, sandbox.Cmd{Args: []string{"sh", "-c", "echo $GREETING from uid $(id -u); cat"},
		Stdin: strings.NewReader("stdin reaches the command\n"), Stdout: &out})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(out.String())
	fmt.Println("exit", res.Status, res.Reason)

	// Files in and out.
	host, _ := os.MkdirTemp("", "files-")
	defer os.RemoveAll(host)
	os.WriteFile(filepath.Join(host, "data.txt"), []byte("42\n"), 0o644)
	if err := sb.CopyIn(ctx, filepath.Join(host, "data.txt"), "/tmp/data.txt"); err != nil {
		fmt.Println(err)
		return
	}
	sb.Exec(ctx, sandbox.Cmd{Args: []string{"sh", "-c", "echo $(cat /tmp/data.txt) answered > /tmp/answer.txt"}})
	if err := sb.CopyOut(ctx, "/tmp/answer.txt", filepath.Join(host, "answer.txt")); err != nil {
		fmt.Println(err)
		return
	}
	answer, _ := os.ReadFile(filepath.Join(host, "answer.txt"))
	fmt.Print(string(answer))

	// A command killed when its context ends; the sandbox lives on.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	res, _ = sb.Exec(short, sandbox.Cmd{Args: []string{"sh", "-c", "while :; do :; done"}})
	fmt.Println("exit", res.Status, res.Reason)
	// Output:
	// hello from uid 0
	// stdin reaches the command
	// exit 0 exited
	// 42 answered
	// exit 137 timeout
}

// One command, start to finish, with a copy-in-out workspace: the
// command's changes come back to the host directory when it ends.
func ExampleRun() {
	work, _ := os.MkdirTemp("", "workspace-")
	defer os.RemoveAll(work)
	os.Chown(work, 1000, 1000)

	var out bytes.Buffer
	res, err := sandbox.Run(context.Background(),
		sandbox.Options{Root: exampleRoot, Bundle: exampleBundle,
			Workspaces: []sandbox.Workspace{{Host: work, Kind: "copy-in-out"}}},
		sandbox.Cmd{Args: []string{"sh", "-c", "pwd; echo result > out.txt"}, Stdout: &out, Stderr: os.Stderr})
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ := os.ReadFile(filepath.Join(work, "out.txt"))
	fmt.Print(out.String(), string(data))
	fmt.Println("exit", res.Status)
	// Output:
	// /workspace
	// result
	// exit 0
}

// A warm pool: sandboxes started ahead, one taken per command (with the
// caller's directory bound at /workspace) and destroyed after it.
func ExampleFromPool() {
	ctx := context.Background()
	err := sandbox.CreatePool(ctx, sandbox.Pool{Name: "p2-example", Size: 1}, sandbox.Options{Root: exampleRoot, Bundle: exampleBundle})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sandbox.RemovePool(exampleRoot, "p2-example")
	work, _ := os.MkdirTemp("", "workspace-")
	defer os.RemoveAll(work)
	os.WriteFile(filepath.Join(work, "in.txt"), []byte("from the host\n"), 0o644)
	os.Chown(filepath.Join(work, "in.txt"), 1000, 1000)
	os.Chown(work, 1000, 1000)

	var out bytes.Buffer
	res, err := sandbox.FromPool(ctx, exampleRoot, "p2-example",
		sandbox.Cmd{Args: []string{"sh", "-c", "pwd; cat in.txt; echo made > out.txt"}, Stdout: &out, Stderr: os.Stderr},
		&sandbox.Workspace{Host: work, Kind: "bind-rw"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(out.String())
	fmt.Println("exit", res.Status, "in a", res.Pool, "sandbox")
	data, _ := os.ReadFile(filepath.Join(work, "out.txt"))
	fmt.Print("on the host: ", string(data))
	// Output:
	// /workspace
	// from the host
	// exit 0 in a warm sandbox
	// on the host: made
}
