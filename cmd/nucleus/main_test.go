package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCanonicalFlags(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		// runc's exec and ps: aliases rewritten before the id only;
		// every word after the id is the command's (SkipArgReorder).
		{"nucleus exec -e A=1 --env B=2 id sh -c x -e C --env", "nucleus exec --env A=1 --env B=2 id sh -c x -e C --env"},
		{"nucleus ps c1 -ef", "nucleus ps c1 -ef"},
		{"nucleus ps -f json c1 -o pid", "nucleus ps --format json c1 -o pid"},
		// runc's other commands: known flags anywhere before -- move
		// first (urfave/cli v1's reordering); unknown words stay.
		{"nucleus --root /r run -b dir c1", "nucleus --root /r run --bundle dir c1"},
		{"nucleus kill c1 --all", "nucleus kill --all c1"},
		{"nucleus kill c1 0 -a", "nucleus kill --all c1 0"},
		{"nucleus update c1 --memory 1M --pids-limit=5", "nucleus update --memory 1M --pids-limit=5 c1"},
		{"nucleus delete c1 -f", "nucleus delete --force c1"},
		{"nucleus run c1 -d -b dir", "nucleus run --detach --bundle dir c1"},
		{"nucleus delete c1 --bogus", "nucleus delete c1 --bogus"},
		{"nucleus delete --bogus c1", "nucleus delete --bogus c1"},
		{"nucleus run c1 -d -- --bundle x", "nucleus run --detach -- c1 --bundle x"},
		{"nucleus state c1 --help", "nucleus state --help"},
		// nucleus's own: flags after arguments move before them, with
		// their values; from -- on nothing is touched.
		{"nucleus export b -o out --copy", "nucleus export --output out --copy b"},
		{"nucleus bundle ref -o d -- a -o", "nucleus bundle --output d ref -- a -o"},
		{"nucleus --debug sandbox --id x -- sh --bundle y", "nucleus --debug sandbox --id x -- sh --bundle y"},
		{"nucleus sandbox -- sh -c x --bundle y", "nucleus sandbox -- sh -c x --bundle y"},
		{"nucleus policy check f --kind caps", "nucleus policy check --kind caps f"},
		{"nucleus policy trace -- true -o x", "nucleus policy trace -- true -o x"},
		{"nucleus policy generate t1 t2 -o p.json", "nucleus policy generate --output p.json t1 t2"},
		// An unknown flag stays a flag (urfave/cli names it), without
		// taking the next word as its value.
		{"nucleus export b --bogus x", "nucleus export --bogus b x"},
		{"nucleus export b --help", "nucleus export --help"},
		{"nucleus help", "nucleus help"},
		{"nucleus --version", "nucleus --version"},
		{"nucleus policy", "nucleus policy"},
	} {
		got, err := canonicalFlags(app, strings.Fields(tc.in))
		if err != nil || !slices.Equal(got, strings.Fields(tc.want)) {
			t.Errorf("%s:\n got %q, %v\nwant %q", tc.in, got, err, tc.want)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		{"nucleus sandbx", `unknown command "sandbx" (did you mean "sandbox"?)`},
		{"nucleus --root /r creat c1", `unknown command "creat" (did you mean "create"?)`},
		{"nucleus policy chek f", `unknown policy command "chek" (did you mean "check"?)`},
		{"nucleus qqqqqq", `unknown command "qqqqqq" (see nucleus --help)`},
		{"nucleus policy qqqqqq", `unknown policy command "qqqqqq" (see nucleus policy --help)`},
	} {
		_, err := canonicalFlags(app, strings.Fields(tc.in))
		if err == nil || err.Error() != tc.want || !errors.Is(err, errUsage) {
			t.Errorf("%s: got %v, want %q (a usage error)", tc.in, err, tc.want)
		}
	}
}
