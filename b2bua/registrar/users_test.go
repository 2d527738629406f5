package registrar

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseUsers(t *testing.T) {
	in := "# web users\n\nalice:secret\r\n  bob:pa:ss:word  \n#carol:x\n"
	got, err := parseUsers(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alice": "secret", "bob": "pa:ss:word"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParseUsersErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error, in order
	}{
		{"no colon", "alice:x\nbob\n", []string{"line 2: want \"username:password\""}},
		{"empty user", ":x", []string{"line 1: empty username"}},
		{"empty password", "# c\nalice:", []string{"line 2: empty password for user \"alice\""}},
		{"space in user", "al ice:x", []string{"line 1: username \"al ice\" contains white space"}},
		{"duplicate", "alice:x\n\nalice:y", []string{"line 3: user \"alice\" already defined on line 1"}},
		{"every problem", "bob\nalice:x\n:y\nalice:z", []string{"line 1:", "line 3: empty username", "line 4: user \"alice\" already defined on line 2"}},
		{"line too long", "alice:x\nbob:" + strings.Repeat("p", maxUsersFileLine), []string{"line 2: bufio.Scanner: token too long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUsers(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error, got %v", got)
			}
			msg := err.Error()
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func TestLoadUsersFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "users")
	if err := os.WriteFile(good, []byte("alice:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := LoadUsersFile(good)
	if err != nil || users["alice"] != "secret" {
		t.Fatalf("LoadUsersFile = %v, %v", users, err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadUsersFile(bad); err == nil || !strings.Contains(err.Error(), bad+": line 1:") {
		t.Fatalf("bad file error = %v", err)
	}
	if _, err := LoadUsersFile(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file error = %v", err)
	}
}
