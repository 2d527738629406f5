package registrar

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxUsersFileLine bounds one line of a users file.
const maxUsersFileLine = 4096

// LoadUsersFile reads a users file: one "username:password" per line. The
// username is everything before the first colon and may contain no white
// space; the password is everything after it (colons included). Lines are
// trimmed of surrounding white space; blank lines and lines starting with
// '#' are skipped. A missing colon, an empty username or password, or a
// username seen twice is an error; the error lists every bad line with its
// number, and no map is returned then.
func LoadUsersFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open users file: %w", err)
	}
	defer f.Close()
	users, err := parseUsers(f)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return users, nil
}

// parseUsers parses the users file format from r.
func parseUsers(r io.Reader) (map[string]string, error) {
	users := make(map[string]string)
	seen := make(map[string]int)
	var problems []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxUsersFileLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, password, err := parseUserLine(line)
		if err == nil {
			if first, dup := seen[user]; dup {
				err = fmt.Errorf("user %q already defined on line %d", user, first)
			}
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		seen[user] = n
		users[user] = password
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, fmt.Errorf("line %d: %w", n+1, err))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return users, nil
}

// parseUserLine splits one non-blank, non-comment line.
func parseUserLine(line string) (user, password string, err error) {
	user, password, ok := strings.Cut(line, ":")
	switch {
	case !ok:
		return "", "", errors.New(`want "username:password"`)
	case user == "":
		return "", "", errors.New("empty username")
	case strings.ContainsAny(user, " \t"):
		return "", "", fmt.Errorf("username %q contains white space", user)
	case password == "":
		return "", "", fmt.Errorf("empty password for user %q", user)
	}
	return user, password, nil
}
