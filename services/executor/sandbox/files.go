package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Input name rules.
const (
	MaxInputNameBytes = 255
	MaxInputs         = 64
)

// InputError names the input at fault.
type InputError struct {
	Index  int
	Name   string
	Reason string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("inputs[%d] (%q): %s", e.Index, e.Name, e.Reason)
}

// ErrInput is wrapped by every *InputError.
var ErrInput = errors.New("invalid input")

// Unwrap lets errors.Is(err, ErrInput) match.
func (e *InputError) Unwrap() error { return ErrInput }

// ValidateInputs checks input names: a plain file name (no '/', not '.' or
// '..', no NUL or control characters, valid UTF-8, at most 255 bytes) and
// unique; at most MaxInputs inputs.
func ValidateInputs(inputs []Input) error {
	if len(inputs) > MaxInputs {
		return &InputError{Index: MaxInputs, Reason: fmt.Sprintf("at most %d inputs", MaxInputs)}
	}
	seen := map[string]int{}
	for i, in := range inputs {
		if reason := checkName(in.Name); reason != "" {
			return &InputError{Index: i, Name: in.Name, Reason: reason}
		}
		if j, dup := seen[in.Name]; dup {
			return &InputError{Index: i, Name: in.Name, Reason: fmt.Sprintf("duplicates inputs[%d]", j)}
		}
		seen[in.Name] = i
	}
	return nil
}

func checkName(name string) string {
	switch {
	case name == "":
		return "name is empty"
	case len(name) > MaxInputNameBytes:
		return fmt.Sprintf("name is longer than %d bytes", MaxInputNameBytes)
	case !utf8.ValidString(name):
		return "name is not valid UTF-8"
	case strings.ContainsRune(name, 0):
		return "name contains a NUL byte"
	case strings.Contains(name, "/"):
		return "name contains '/'; inputs are plain file names"
	case name == "." || name == "..":
		return "name is '.' or '..'"
	case strings.Contains(name, ".."):
		return "name contains '..'"
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "name contains a control character"
		}
	}
	return ""
}

// OutputCapError says an output cap was hit while collecting files.
type OutputCapError struct{ What string }

func (e *OutputCapError) Error() string { return "output files: " + e.What }

// collectOutputs returns the regular files under dir, sorted by name. It
// never follows a symlink, skips hard-linked files and anything that is not
// a regular file or directory, and skips names that are not clean UTF-8.
// The sandbox is dead when this runs, so nothing changes underneath.
func collectOutputs(dir string, maxFiles int, maxBytes int64) ([]File, error) {
	var files []File
	var total int64
	var capErr *OutputCapError
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if strings.Count(rel, "/") >= 16 {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			paths = append(paths, rel)
		}
		return nil // symlinks, devices, fifos, sockets: never returned
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	for _, rel := range paths {
		if !cleanOutputName(rel) {
			continue
		}
		if len(files) >= maxFiles {
			capErr = &OutputCapError{What: fmt.Sprintf("more than %d files (max_output_files)", maxFiles)}
			break
		}
		f, err := readRegular(filepath.Join(dir, rel), maxBytes-total)
		if errors.Is(err, errTooBig) {
			capErr = &OutputCapError{What: fmt.Sprintf("more than %d bytes in total (max_output_bytes) at %s", maxBytes, rel)}
			break
		}
		if err != nil {
			continue // not a plain regular file after all (a hard link, say)
		}
		f.Name = rel
		total += int64(len(f.Content))
		files = append(files, f)
	}
	if capErr != nil {
		return files, capErr
	}
	return files, nil
}

var (
	errTooBig   = errors.New("too big")
	errNotPlain = errors.New("not a plain file")
)

func readRegular(path string, room int64) (File, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return File{}, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return File{}, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Nlink != 1 {
		return File{}, errNotPlain
	}
	if st.Size > room {
		return File{}, errTooBig
	}
	b, err := io.ReadAll(io.LimitReader(f, room+1))
	if err != nil {
		return File{}, err
	}
	if int64(len(b)) > room {
		return File{}, errTooBig
	}
	sum := sha256.Sum256(b)
	return File{Content: b, SHA256: hex.EncodeToString(sum[:])}, nil
}

func cleanOutputName(rel string) bool {
	if len(rel) > 1024 || !utf8.ValidString(rel) {
		return false
	}
	for _, part := range strings.Split(rel, "/") {
		if part == "" || part == "." || part == ".." || len(part) > 255 {
			return false
		}
		for _, r := range part {
			if unicode.IsControl(r) || r == '\\' {
				return false
			}
		}
	}
	return true
}
