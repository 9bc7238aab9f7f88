// Command s3-entrypoint lets the MinIO server stand in for the Hanzo S3 server image, which cannot be
// fetched here. Hanzo S3 reads S3_* environment variables (S3_ARGS, S3_CONFIG_ENV_FILE,
// S3_ROOT_USER, ...) where MinIO reads MINIO_*; this entrypoint
//
//   - copies every S3_<NAME> variable of its environment to MINIO_<NAME> (an explicit MINIO_<NAME>
//     wins),
//   - reads the file S3_CONFIG_ENV_FILE names (lines `export S3_ROOT_USER="..."`, the format the
//     operator renders) and sets each entry the same way, S3_* keys renamed to MINIO_*, and
//   - replaces itself with the server (execve), passing its own arguments unchanged.
//
// The server restarts in place (the admin API's service restart) by executing its own argv[0]
// again with the environment it has. So the server is given this entrypoint's path as argv[0],
// and the container's own environment rides along in ORIGINAL_ENV: a restart comes back here,
// starts from the container's environment and reads the configuration file as it is now, as a
// fresh start would. (Without that, a restarted server would keep every variable of its first
// start: the file's changes, a new root password or a pool added, would never reach it.)
//
// Values are never printed: the configuration file holds the root credentials.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
)

const server = "/usr/bin/minio"

// originalEnv holds the container's environment (a JSON list) for a restart in place.
const originalEnv = "HANZO_S3_ENTRYPOINT_ORIGINAL_ENV"

// rename maps a Hanzo S3 variable name onto MinIO's, and reports whether it is one.
func rename(key string) (string, bool) {
	if rest, ok := strings.CutPrefix(key, "S3_"); ok && rest != "" {
		return "MINIO_" + rest, true
	}
	return "", false
}

// parseEnvFile reads `[export] KEY=value` lines; blank lines and # comments are skipped, one level
// of matching quotes is removed and \" and \\ inside double quotes are unescaped.
func parseEnvFile(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var entries [][2]string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		text = strings.TrimSpace(strings.TrimPrefix(text, "export "))
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: not KEY=value", path, line)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(value[1 : len(value)-1])
		} else if len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'' {
			value = value[1 : len(value)-1]
		}
		entries = append(entries, [2]string{strings.TrimSpace(key), value})
	}
	return entries, scanner.Err()
}

func main() {
	env := map[string]string{}
	var order []string
	set := func(key, value string, override bool) {
		if _, seen := env[key]; !seen {
			order = append(order, key)
		} else if !override {
			return
		}
		env[key] = value
	}
	container := os.Environ()
	if saved, ok := os.LookupEnv(originalEnv); ok {
		if err := json.Unmarshal([]byte(saved), &container); err != nil {
			fmt.Fprintf(os.Stderr, "s3-entrypoint: cannot read %s: %v\n", originalEnv, err)
			os.Exit(1)
		}
	}
	for _, kv := range container {
		key, value, _ := strings.Cut(kv, "=")
		set(key, value, true)
	}
	// Renamed variables never override a MINIO_* the container sets explicitly.
	explicit := map[string]bool{}
	for key := range env {
		if strings.HasPrefix(key, "MINIO_") {
			explicit[key] = true
		}
	}
	for _, key := range append([]string(nil), order...) {
		if minioKey, ok := rename(key); ok && !explicit[minioKey] {
			set(minioKey, env[key], true)
		}
	}
	if path := env["S3_CONFIG_ENV_FILE"]; path != "" {
		entries, err := parseEnvFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "s3-entrypoint: cannot read the configuration file: %v\n", err)
			os.Exit(1)
		}
		for _, e := range entries {
			key := e[0]
			if minioKey, ok := rename(key); ok {
				key = minioKey
			}
			if !explicit[key] {
				set(key, e[1], true)
			}
		}
	}
	environ := make([]string, 0, len(order)+1)
	for _, key := range order {
		environ = append(environ, key+"="+env[key])
	}
	saved, err := json.Marshal(container)
	if err != nil {
		fmt.Fprintf(os.Stderr, "s3-entrypoint: cannot keep the environment: %v\n", err)
		os.Exit(1)
	}
	environ = append(environ, originalEnv+"="+string(saved))
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	args := append([]string{self}, os.Args[1:]...)
	if err := syscall.Exec(server, args, environ); err != nil {
		fmt.Fprintf(os.Stderr, "s3-entrypoint: cannot start %s: %v\n", server, err)
		os.Exit(1)
	}
}
