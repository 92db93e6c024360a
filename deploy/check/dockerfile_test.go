package check

// No container engine runs in CI, so the image is checked statically: the
// Dockerfile is parsed by BuildKit's own parser (the one `docker build` uses)
// with its linter on, and its stages, packages, user, entrypoint and build
// context are checked against the repository.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
)

const (
	dockerfile   = "../Dockerfile"
	dockerignore = "../Dockerfile.dockerignore"
	repoRoot     = "../.."
)

// parsedDockerfile is a Dockerfile parsed into BuildKit's typed instructions.
type parsedDockerfile struct {
	stages   []instructions.Stage
	metaArgs map[string]string
	warnings []string
}

func parseDockerfile(t *testing.T, src []byte) (*parsedDockerfile, error) {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	out := &parsedDockerfile{metaArgs: map[string]string{}}
	for _, w := range res.Warnings {
		out.warnings = append(out.warnings, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		out.warnings = append(out.warnings, fmt.Sprintf("%s: %s (line %v)", rule, msg, loc))
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, err
	}
	out.stages = stages
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				out.metaArgs[kv.Key] = *kv.Value
			}
		}
	}
	return out, nil
}

// expand replaces ${NAME} with the meta ARG defaults.
func (p *parsedDockerfile) expand(s string) string {
	return os.Expand(s, func(k string) string { return p.metaArgs[k] })
}

func commandsOf[T any](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func loadDockerfile(t *testing.T) *parsedDockerfile {
	t.Helper()
	src, err := os.ReadFile(dockerfile)
	require.NoError(t, err)
	p, err := parseDockerfile(t, src)
	require.NoError(t, err)
	require.Empty(t, p.warnings, "BuildKit's parser and linter warn")
	return p
}

func TestDockerfileParserCatchesMistakes(t *testing.T) {
	t.Parallel()
	for name, bad := range map[string]string{
		"unknown instruction": "FROM debian:bookworm-slim\nRUNN true\n",
		"bad healthcheck":     "FROM debian:bookworm-slim\nHEALTHCHECK --interval=x CMD true\n",
		"no FROM":             "RUN true\n",
	} {
		_, err := parseDockerfile(t, []byte(bad))
		require.Error(t, err, name)
	}
	p, err := parseDockerfile(t, []byte("from debian:bookworm-slim as Build\nCMD airlock serve\n"))
	require.NoError(t, err)
	require.NotEmpty(t, p.warnings, "the linter flags casing and shell-form CMD")
}

func TestDockerfileStages(t *testing.T) {
	t.Parallel()
	p := loadDockerfile(t)
	require.GreaterOrEqual(t, len(p.stages), 2, "multi-stage")
	build, runtime := p.stages[0], p.stages[len(p.stages)-1]

	// The builder's Go is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	require.NotNil(t, m)
	require.Equal(t, "golang:"+string(m[1])+"-bookworm", p.expand(build.BaseName), "builder image")
	require.Equal(t, "debian:bookworm-slim", runtime.BaseName, "runtime image")

	// The builder builds ./cmd/airlock and its sandbox helper
	// ./cmd/airlock-sandbox with the workspace off (so go.mod's replace of
	// gen/go must be there) into the directory the runtime copies from.
	var buildCmd string
	for _, r := range commandsOf[*instructions.RunCommand](build) {
		line := strings.Join(r.CmdLine, " ")
		if strings.Contains(line, "go build") {
			buildCmd = line
		}
	}
	// Each binary's output path, from "-o PATH ./cmd/NAME".
	outs := map[string]string{}
	for _, m := range regexp.MustCompile(`-o (\S+) \./cmd/(\S+)`).FindAllStringSubmatch(buildCmd, -1) {
		outs[m[2]] = m[1]
	}
	require.NotEmpty(t, outs["airlock"], "go build -o PATH ./cmd/airlock")
	require.NotEmpty(t, outs["airlock-sandbox"], "go build -o PATH ./cmd/airlock-sandbox")
	// The helper starts twice per sandbox: static (no cgo) starts faster.
	require.Regexp(t, `CGO_ENABLED=0 go build [^&]*-o \S+ \./cmd/airlock-sandbox`, buildCmd)
	require.Contains(t, buildCmd, "-X github.com/airlockhq/airlock/pkg/version.Version=")
	require.Regexp(t, `(?m)^replace github.com/airlockhq/airlock/gen/go => ./gen/go$`, string(gomod))
	version, err := os.ReadFile(filepath.Join(repoRoot, "pkg/version/version.go"))
	require.NoError(t, err)
	require.Contains(t, string(version), "var Version = ", "the -X target exists")
	var gowork, nocgo bool
	for _, e := range commandsOf[*instructions.EnvCommand](build) {
		for _, kv := range e.Env {
			gowork = gowork || kv.Key == "GOWORK" && kv.Value == "off"
			nocgo = nocgo || kv.Key == "CGO_ENABLED" && kv.Value == "0"
		}
	}
	require.True(t, gowork, "the image build must not need deploy/check's modules")
	// Nothing needs C (the policy parser is Go since tree-sitter left the
	// production path): the binaries are static, whatever libc the runtime
	// image has.
	require.True(t, nocgo, "the image build must disable cgo (CGO_ENABLED=0)")

	// Both binaries land in one directory: the executor looks for
	// airlock-sandbox next to airlock.
	var copied bool
	for _, c := range commandsOf[*instructions.CopyCommand](runtime) {
		if c.From == "" {
			continue
		}
		require.Equal(t, build.Name, c.From, "COPY --from names the build stage")
		require.Equal(t, []string{outs["airlock"], outs["airlock-sandbox"]}, c.SourcePaths)
		require.Equal(t, "/usr/local/bin/", c.DestPath)
		copied = true
	}
	require.True(t, copied, "the runtime stage never copies the binaries")
}

func TestDockerfileRuntime(t *testing.T) {
	t.Parallel()
	p := loadDockerfile(t)
	runtime := p.stages[len(p.stages)-1]

	// The sandbox's packages, from Debian, with the apt lists removed.
	var install string
	for _, r := range commandsOf[*instructions.RunCommand](runtime) {
		line := strings.Join(r.CmdLine, " ")
		if strings.Contains(line, "apt-get install") {
			install = line
		}
	}
	fields := strings.Fields(install)
	for _, pkg := range []string{"bubblewrap", "python3", "python3-pandas", "python3-numpy", "python3-openpyxl", "ca-certificates"} {
		require.Contains(t, fields, pkg)
	}
	require.Contains(t, install, "--no-install-recommends")
	require.Contains(t, install, "rm -rf /var/lib/apt/lists/*")

	// A fixed non-root user, created with that uid.
	users := commandsOf[*instructions.UserCommand](runtime)
	require.Len(t, users, 1)
	uid, _, _ := strings.Cut(users[0].User, ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER must be numeric so runAsNonRoot can verify it")
	require.NotZero(t, n)
	var created bool
	for _, r := range commandsOf[*instructions.RunCommand](runtime) {
		created = created || strings.Contains(strings.Join(r.CmdLine, " "), "useradd --system --uid "+uid)
	}
	require.True(t, created, "no useradd for uid %s", uid)
	// The k8s pods run as the same uid.
	for _, d := range render(t, baseDir).deployments {
		require.Equal(t, int64(n), *d.Spec.Template.Spec.SecurityContext.RunAsUser, d.Name)
	}

	// ENTRYPOINT airlock, CMD a service, both in exec form.
	eps := commandsOf[*instructions.EntrypointCommand](runtime)
	require.Len(t, eps, 1)
	require.False(t, eps[0].PrependShell, "ENTRYPOINT in exec form")
	require.Equal(t, []string{"airlock"}, eps[0].CmdLine)
	cmds := commandsOf[*instructions.CmdCommand](runtime)
	require.Len(t, cmds, 1)
	require.False(t, cmds[0].PrependShell, "CMD in exec form")
	require.Len(t, cmds[0].CmdLine, 2)
	require.Equal(t, "serve", cmds[0].CmdLine[0])
	require.Contains(t, Services, cmds[0].CmdLine[1])

	// The gRPC port is exposed and the health check asks it.
	var ports []string
	for _, e := range commandsOf[*instructions.ExposeCommand](runtime) {
		ports = append(ports, e.Ports...)
	}
	require.Contains(t, ports, "50051")
	hc := commandsOf[*instructions.HealthCheckCommand](runtime)
	require.Len(t, hc, 1)
	require.Equal(t, []string{"CMD", "airlock", "health", "--addr", "127.0.0.1:50051"}, hc[0].Health.Test)
	require.Equal(t, 3*time.Second, hc[0].Health.Timeout)
}

// TestDockerfileBuildContext checks that every file the build reads is in
// the context deploy/Dockerfile.dockerignore leaves: each COPY source, every
// package `go build ./cmd/airlock ./cmd/airlock-sandbox` compiles, and every
// file they embed.
func TestDockerfileBuildContext(t *testing.T) {
	t.Parallel()
	p := loadDockerfile(t)
	f, err := os.Open(dockerignore)
	require.NoError(t, err)
	patterns, err := ignorefile.ReadAll(f)
	require.NoError(t, f.Close())
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	// A path is in the context when the patterns, applied to it and its
	// parent directories in order, leave it in (as `docker build` reads them).
	included := func(rel string) bool {
		excluded, err := pm.MatchesOrParentMatches(rel)
		require.NoError(t, err)
		return !excluded
	}
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)

	var sources []string
	for _, st := range p.stages {
		for _, c := range commandsOf[*instructions.CopyCommand](st) {
			if c.From != "" {
				continue
			}
			for _, src := range c.SourcePaths {
				src = strings.TrimSuffix(src, "/")
				_, err := os.Stat(filepath.Join(root, src))
				require.NoError(t, err, "COPY %s: not in the repository", src)
				require.True(t, included(src), "COPY %s: excluded by the .dockerignore", src)
				sources = append(sources, src)
			}
		}
	}
	copiedTo := func(rel string) bool {
		for _, s := range sources {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				return true
			}
		}
		return false
	}

	// What the build compiles and embeds, as the go command sees it with the
	// workspace off, exactly as in the image.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f",
		`{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, "./cmd/airlock", "./cmd/airlock-sandbox")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	listing, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var files int
	for _, line := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		parts := strings.Fields(line)
		if len(parts) == 0 {
			continue
		}
		dir, err := filepath.Rel(root, parts[0])
		require.NoError(t, err)
		if strings.HasPrefix(dir, "..") {
			continue // a dependency from the module cache
		}
		for _, name := range parts[1:] {
			rel := filepath.ToSlash(filepath.Join(dir, name))
			require.True(t, copiedTo(rel), "%s is compiled into airlock but no COPY brings it into the image", rel)
			require.True(t, included(rel), "%s is compiled into airlock but the .dockerignore leaves it out", rel)
			files++
		}
	}
	require.Greater(t, files, 20, "go list found too little to be the airlock binary")
	for _, must := range []string{"go.mod", "go.sum", "gen/go/go.mod", "gen/go/go.sum"} {
		require.True(t, included(must), must)
		require.True(t, copiedTo(must), "%s is not copied", must)
	}
	require.False(t, included(".git/HEAD"), "the .git directory must stay out of the context")
	require.False(t, slices.Contains(sources, "."), "COPY . would send everything")
}
