package integration

// A corpus of real programs run under the built-in agent allowlist: what
// an agent's code ordinarily runs (Python's standard library, busybox
// applets, git, gcc and make, perl, node, and a static binary making the
// legacy x86_64 calls) must do its work, not die of SIGSYS. Each item
// checks what the program printed. The rootfs takes the host's /usr and
// /etc/ssl read-only, as a user would. Ids are prefixed al-.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// corpusBundle is a busybox rootfs with the host's /usr (and /lib, /lib64
// through it) and /etc/ssl bound read-only, the corpus scripts at /corpus
// and the legacy static binary at /bin/legacy.
func corpusBundle(t *testing.T) *Bundle {
	t.Helper()
	b := hostUsrBundle(t, "/usr/bin/python3", "/usr/bin/git", "/usr/bin/perl", "/usr/bin/gcc", "/usr/bin/make",
		"/usr/bin/node", "/usr/bin/openssl", "/etc/ssl/openssl.cnf")
	os.MkdirAll(filepath.Join(b.Rootfs, "etc", "ssl"), 0o755)
	b.Spec.Mounts = append(b.Spec.Mounts, specMount("/etc/ssl", "/etc/ssl"))
	b.Save(t)
	dst := filepath.Join(b.Rootfs, "corpus")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/corpus/*")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gcc := requireCmd(t, "gcc")
	_, err := os.Stat("/usr/lib/x86_64-linux-gnu/libc.a")
	need(t, err == nil, "needs glibc's static libc.a (apt-get install libc6-dev)")
	out, err := exec.Command(gcc, "-static", "-O1", "-o", filepath.Join(b.Rootfs, "bin", "legacy"), "testdata/corpus/legacy.c").CombinedOutput()
	if err != nil {
		t.Fatalf("gcc -static legacy.c: %v\n%s", err, out)
	}
	return b
}

// corpusEnv starts every corpus script: the host's programs first, a
// writable home.
const corpusEnv = "set -e; export HOME=/tmp PATH=/usr/bin:/bin LC_ALL=C.UTF-8; "

// corpusItem is one program of the corpus: a shell script run in its own
// agent sandbox, and the lines it must print.
type corpusItem struct {
	name   string
	flags  []string
	script string
	want   []string
}

// corpusItems lists the corpus; gvisor copies the workspace in and out
// (the gVisor engine refuses a writable bind, see policy.checkWorkspaceOwnership).
func corpusItems(t *testing.T, gvisor bool) []corpusItem {
	t.Helper()
	ws := userWorkspace(t)
	wsFlag := ws
	if gvisor {
		wsFlag += ":copy-in-out"
	}
	for name, body := range map[string]string{
		"main.c":   "#include <stdio.h>\nint twice(int);\nint main(void) { printf(\"built %d\\n\", twice(21)); return 0; }\n",
		"twice.c":  "int twice(int x) { return 2 * x; }\n",
		"Makefile": "hello: main.o twice.o\n\t$(CC) -o $@ main.o twice.o\n%.o: %.c\n\t$(CC) -O2 -c $<\n",
	} {
		if err := os.WriteFile(filepath.Join(ws, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chownTree(t, ws, 1000, 1000)
	return []corpusItem{
		{name: "py-io", script: "python3 /corpus/py_io.py", want: []string{
			"select True s", "poll True p",
			"selectors EpollSelector x", "selectors PollSelector x", "selectors SelectSelector x",
			"subprocess run 42", "subprocess communicate ['c', 'b', 'a'] 0",
			"threading 4000 ping [0, 1, 4, 9, 16]", "tempfile temp-data 2", "sqlite3 ('abc', 6)", "PY IO OK"}},
		{name: "py-mp", script: "python3 /corpus/py_mp.py", want: []string{
			"multiprocessing fork [0, 1, 4, 9, 16] from-child 0 42",
			"multiprocessing spawn [0, 1, 4, 9, 16] from-child 0 42", "PY MP OK"}},
		// The certificate comes from the openssl CLI in the sandbox.
		{name: "py-net", script: "cd /tmp && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem " +
			"-subj /CN=localhost -addext subjectAltName=DNS:localhost -days 1 2>/dev/null && " +
			"openssl x509 -in c.pem -noout -subject && python3 /corpus/py_net.py c.pem k.pem", want: []string{
			"subject=CN = localhost", "asyncio HELLO ASYNCIO child", "http.server 200 path=/corpus",
			"ssl TLSv1.3 slt-hello", "PY NET OK"}},
		// nc -l: the listener accepts (accept, not accept4) the client
		// started next to it, retried until the listener is up.
		{name: "bb-nc", script: `busybox nc -l -p 7001 > /tmp/nc.out & srv=$!
i=0; until echo nc-payload | busybox nc 127.0.0.1 7001 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ]; busybox sleep 0.1; done
wait $srv; echo "nc got $(cat /tmp/nc.out)"`, want: []string{"nc got nc-payload"}},
		{name: "bb-wget", script: `mkdir -p /tmp/www && echo served-by-httpd > /tmp/www/index.html
busybox httpd -f -p 127.0.0.1:7002 -h /tmp/www & srv=$!
i=0; until busybox wget -q -O /tmp/got http://127.0.0.1:7002/index.html 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ]; busybox sleep 0.1; done
kill $srv; echo "wget $(cat /tmp/got)"`, want: []string{"wget served-by-httpd"}},
		{name: "bb-tar-sort", script: `cd /tmp && mkdir -p t/d && echo one > t/a && echo two > t/d/b
busybox tar czf t.tgz t && rm -r t && echo "tar list $(busybox tar tzf t.tgz | busybox sort | busybox tr '\n' ' ')"
busybox tar xzf t.tgz && echo "tar extract $(cat t/a t/d/b | busybox tr '\n' ' ')"
echo "sort $(printf '10\n9\n2\n9\n' | busybox sort -n -u | busybox tr '\n' ' ')"
echo "sort keys $(printf 'b 2\na 3\nc 1\n' | busybox sort -k2,2nr | busybox cut -d' ' -f1 | busybox tr '\n' ' ')"`,
			want: []string{"tar list t/ t/a t/d/ t/d/b ", "tar extract one two ", "sort 2 9 10 ", "sort keys a b c "}},
		{name: "git", script: `export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@b GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@b
cd /tmp && git init -q -b main repo && cd repo && echo one > f && git add f && git commit -qm first
echo two >> f && git commit -qam second && git gc -q && git fsck --no-progress
git clone -q /tmp/repo /tmp/clone && echo "git log $(git -C /tmp/clone log --format=%s | tr '\n' ' ')"
echo "git show $(git show HEAD:f | tr '\n' ' ')"`, want: []string{"git log second first ", "git show one two "}},
		// The binary make builds runs from the workspace (--workspace-exec).
		{name: "gcc-make", flags: []string{"--workspace", wsFlag, "--workspace-exec"},
			script: "make -s -j2 CC=gcc && ./hello && make -s -q hello && echo up-to-date",
			want:   []string{"built 42", "up-to-date"}},
		{name: "perl", script: `perl -e '
use strict; use IO::Socket::INET; use POSIX ();
my $srv = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp") or die "listen: $!";
my $pid = fork() // die "fork: $!";
if ($pid == 0) { my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $srv->sockport) or die; print $c "perl-sock\n"; close $c; POSIX::_exit(0) }
my $conn = $srv->accept or die "accept: $!"; my $line = <$conn>; chomp $line; waitpid($pid, 0);
open(my $p, "-|", "echo", "piped") or die; my $x = <$p>; chomp $x; close $p;
my %h = (alpha => 5, be => 2, gamma => 9); my @s = sort { $h{$a} <=> $h{$b} } keys %h;
select(undef, undef, undef, 0.01);
printf "perl %s %s %s %d\n", $line, $x, join(",", @s), POSIX::floor(7.9);'`,
			want: []string{"perl perl-sock piped be,alpha,gamma 7"}},
		{name: "node", script: "node /corpus/node.js", want: []string{
			"fs node-data 1", "child_process 42", "crypto ba7816bf", "http 200 path=/corpus",
			"fs.promises node-data", "worker 42", "NODE OK"}},
		{name: "legacy", script: "mkdir /tmp/l && legacy /tmp/l", want: legacyWant},
	}
}

// legacyWant is what testdata/corpus/legacy.c prints when every call it
// makes went through.
var legacyWant = []string{
	"open legacy-data", "stat size=11", "lstat symlink=1", "getdents entries", "pipe pipe-data",
	"fork child exit=7", "pselect6 ready=1", "epoll_wait fd-match=1", "eventfd 3", "inotify legacy-new",
	"timerfd expirations=1", "signalfd signo=SIGUSR1", "accept sock", "time sane", "LEGACY OK"}

// runCorpus runs every corpus item in a sandbox with the given flags.
func runCorpus(t *testing.T, prefix string, flags ...string) {
	r := newRunner(t)
	b := corpusBundle(t)
	gvisor := len(flags) > 1 && flags[0] == "--engine" && flags[1] == "gvisor"
	for _, it := range corpusItems(t, gvisor) {
		t.Run(it.name, func(t *testing.T) {
			id := prefix + it.name
			res := r.sandbox(b, id, append(append([]string(nil), flags...), it.flags...), "sh", "-c", corpusEnv+it.script)
			if gvisor {
				assertNoGvisorLeftovers(t, r, id, b.Dir)
			}
			expectCorpus(t, it.name, res, it.want)
		})
	}
}

// TestCorpusAgent runs every corpus item in an agent sandbox (the
// default mode).
func TestCorpusAgent(t *testing.T) { runCorpus(t, "al-") }

// TestCorpusStrictAgent: strict-agent mode's allowlist (the agent one
// without memfd_create) runs the corpus too.
func TestCorpusStrictAgent(t *testing.T) { runCorpus(t, "al-st-", "--mode", "strict-agent") }

// TestCorpusGvisor: the gVisor engine enforces the profile made from the
// same allowlist (in runsc's names: Debian's runsc calls pselect6
// "pselect", and without that name glibc's select() is killed).
func TestCorpusGvisor(t *testing.T) {
	requireCmd(t, "runsc")
	runCorpus(t, "al-gv-", "--engine", "gvisor")
}

func expectCorpus(t *testing.T, name string, res Result, want []string) {
	t.Helper()
	var missing []string
	for _, w := range want {
		if !strings.Contains(res.Stdout, w+"\n") {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 || res.Code != 0 {
		// 159 is 128+SIGSYS: the seccomp filter killed the program.
		t.Errorf("%s: exit %d, missing %q\nstdout: %s\nstderr: %s", name, res.Code, missing, res.Stdout, res.Stderr)
	}
}

// setidScript: seteuid and setegid to the caller's own ids (the form
// posix_spawn's POSIX_SPAWN_RESETIDS makes) pass; every other set*id
// call, even one that would change nothing, is refused with EPERM, not
// killed.
const setidScript = `
import os
os.seteuid(os.geteuid()); os.setegid(os.getegid()); os.setresuid(-1, 0, -1)
print("seteuid ok", os.getresuid())
for name, call in [("setresuid", lambda: os.setresuid(0, 0, 0)), ("setresgid", lambda: os.setresgid(-1, 0, 0)),
                   ("setuid", lambda: os.setuid(0)), ("setreuid", lambda: os.setreuid(0, 0)),
                   ("setgroups", lambda: os.setgroups([])), ("setresuid-other", lambda: os.setresuid(-1, 1000, -1))]:
    try:
        call(); print(name, "ALLOWED")
    except OSError as e:
        print(name, "DENIED", e.errno)
`

// TestCorpusSetidStaysRefused: letting make's posix_spawn through opens
// the seteuid form of setresuid and setresgid, nothing else of the set*id
// family; on both engines.
func TestCorpusSetidStaysRefused(t *testing.T) {
	r := newRunner(t)
	b := corpusBundle(t)
	// setresuid(-1, 1000, -1) passes the filter; the kernel refuses it,
	// with no CAP_SETUID (EPERM as well).
	want := []string{"seteuid ok (0, 0, 0)", "setresuid DENIED 1", "setresgid DENIED 1", "setuid DENIED 1",
		"setreuid DENIED 1", "setgroups DENIED 1", "setresuid-other DENIED 1"}
	expectCorpus(t, "native", r.sandbox(b, "al-setid", nil, "python3", "-c", setidScript), want)
	t.Run("gvisor", func(t *testing.T) {
		requireCmd(t, "runsc")
		res := r.sandbox(b, "al-setid-gv", []string{"--engine", "gvisor"}, "python3", "-c", setidScript)
		assertNoGvisorLeftovers(t, r, "al-setid-gv", b.Dir)
		expectCorpus(t, "gvisor", res, want)
	})
}
