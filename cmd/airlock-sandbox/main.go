// Command airlock-sandbox is the executor's sandbox helper. The executor
// starts it twice per sandbox: as the launch helper on the host (it joins the
// run's cgroup, sets the rlimits, drops to the sandbox's uid and execs bwrap)
// and as the sandbox's first process (Landlock, then Python, whose wait
// status it reports). `make build` and the container image put it next to
// the airlock binary, where the executor looks for it.
//
// It is a binary of its own to be small: the airlock binary's start-up (its
// package initialisation alone: gRPC, protobuf registries, CEL, ...) costs
// several milliseconds more, and the second start lands on every run. Build
// it with CGO_ENABLED=0 (as make build and the image do): the static binary
// starts another ~0.5 ms faster.
package main

import (
	"fmt"
	"os"

	"github.com/airlockhq/airlock/services/executor/sandbox"
)

func main() {
	sandbox.RunHelper()
	fmt.Fprintln(os.Stderr, "airlock-sandbox: the airlock executor's sandbox helper; the executor starts it, not a person")
	os.Exit(2)
}
