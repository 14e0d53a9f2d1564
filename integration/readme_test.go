package integration

// The README's shell examples run as written, so the docs cannot rot.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line       int // of the opening fence
	text       string
	skip       bool
	skipReason string
}

var (
	readmeDirective = regexp.MustCompile(`^<!--\s*readme-test:\s*(.*?)\s*-->$`)
	readmeSkip      = regexp.MustCompile(`^skip \((.+)\)$`)
	// Container ids in the examples are a letter and a digit (c1, a1),
	// also as cp's ID:PATH.
	readmeID = regexp.MustCompile(`(^|[\s;&|])([a-z][0-9])($|[\s;&|:])`)
)

func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	directive, directiveLine := "", 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "```sh"):
			cur = &readmeBlock{line: n}
			if directive != "" && directiveLine == n-1 {
				m := readmeSkip.FindStringSubmatch(directive)
				if m == nil || strings.TrimSpace(m[1]) == "" {
					t.Errorf("README.md:%d: %q: want `<!-- readme-test: skip (reason) -->`", directiveLine, directive)
				}
				cur.skip = true
				if m != nil {
					cur.skipReason = m[1]
				}
			}
		default:
			if m := readmeDirective.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
				directive, directiveLine = m[1], n
				if !strings.HasPrefix(directive, "skip") {
					t.Errorf("README.md:%d: unknown readme-test directive %q", n, directive)
				}
			} else if strings.HasPrefix(strings.TrimSpace(line), "<!--") && strings.Contains(line, "readme-test") {
				t.Errorf("README.md:%d: malformed readme-test directive %q", n, line)
			}
		}
	}
	if cur != nil {
		t.Errorf("README.md:%d: unclosed ```sh block", cur.line)
	}
	return blocks
}

func TestReadmeExamples(t *testing.T) {
	r := newRunner(t)
	blocks := readmeBlocks(t, "../README.md")
	if len(blocks) == 0 {
		t.Fatal("README.md: no ```sh blocks")
	}
	// `nucleus` on PATH is the binary under test with this test's root.
	wrap := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nexec %s --root %s \"$@\"\n", r.Bin, r.Root)
	if err := os.WriteFile(filepath.Join(wrap, "nucleus"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ran := 0
	for i, blk := range blocks {
		if blk.skip {
			t.Logf("README.md:%d: skipped: %s", blk.line, blk.skipReason)
			continue
		}
		t.Run(fmt.Sprintf("line%d", blk.line), func(t *testing.T) {
			if strings.Contains(blk.text, "--engine gvisor") {
				requireCmd(t, "runsc")
			}
			b := newBundle(t, "sh", "-c", "echo hello from mybundle; sleep 5")
			b.Spec.Root.Readonly = false
			b.Save(t)
			prefix := fmt.Sprintf("rdme%d-%d-", os.Getpid()%100000, i)
			var ids []string
			text := strings.ReplaceAll(blk.text, "mybundle", b.Dir)
			text = readmeID.ReplaceAllStringFunc(text, func(m string) string {
				sub := readmeID.FindStringSubmatch(m)
				ids = append(ids, prefix+sub[2])
				return sub[1] + prefix + sub[2] + sub[3]
			})
			dir := t.TempDir()
			os.Chmod(dir, 0o755)
			cmd := exec.Command("sh", "-e", "-c", text)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+wrap+":"+os.Getenv("PATH"))
			cmd.WaitDelay = 10 * time.Second
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(3 * time.Minute):
				cmd.Process.Kill()
				<-done
				t.Errorf("README.md:%d: still running after 3 minutes", blk.line)
			}
			for _, id := range ids {
				r.Run(nil, "delete", "--force", id)
			}
			if err != nil {
				t.Errorf("README.md:%d: block failed: %v\n%s\n--- output:\n%s", blk.line, err, text, out)
			}
			for _, id := range ids {
				assertNoLeftovers(t, r.Root, id, b.Dir)
			}
		})
		ran++
	}
	if ran == 0 {
		t.Error("README.md: every ```sh block is skipped")
	}
}
