package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"

	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/services/policy"
	"github.com/airlockhq/airlock/services/policy/analysis"
	"github.com/airlockhq/airlock/services/policy/policydoc"
)

const defaultPolicyDir = "./policies"

// policyFlags are the policy service's settings.
type policyFlags struct {
	dir             string
	reloadInterval  time.Duration
	maxCodeBytes    int
	analysisTimeout time.Duration
}

// policyService serves airlock.policy.v1 from a directory of YAML policies
// that reload when they change.
func policyService() *serviceSpec {
	var f policyFlags
	return &serviceSpec{
		Name:     "policy",
		FullName: policyv1.PolicyService_ServiceDesc.ServiceName,
		Rules:    policy.Rules(),
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&f.dir, "policy-dir", defaultPolicyDir, "directory of policy files (*.yaml); reloaded when they change")
			fs.DurationVar(&f.reloadInterval, "policy-reload-interval", 2*time.Second, "how often the policy directory is checked for changes")
			fs.IntVar(&f.maxCodeBytes, "policy-max-code-bytes", 1<<20, "largest code a Check accepts")
			fs.DurationVar(&f.analysisTimeout, "policy-analysis-timeout", 2*time.Second, "time limit of one analysis")
		},
		Start: func(ctx context.Context, env *serviceEnv) (func() error, error) {
			if f.reloadInterval <= 0 {
				return nil, config.Invalid("policy-reload-interval", "must be positive")
			}
			if f.maxCodeBytes <= 0 || f.maxCodeBytes > 16<<20 {
				return nil, config.Invalid("policy-max-code-bytes", "must be between 1 and %d", 16<<20)
			}
			if f.analysisTimeout <= 0 {
				return nil, config.Invalid("policy-analysis-timeout", "must be positive")
			}
			store, watch, err := openPolicyStore(env, f.dir)
			if err != nil {
				return nil, err
			}
			svc := policy.New(store, policy.Config{MaxCodeBytes: f.maxCodeBytes,
				Analysis: analysis.Options{Timeout: f.analysisTimeout}}, env.Log)
			policyv1.RegisterPolicyServiceServer(env.Server.GRPC(), svc)
			env.Server.AddHealthCheck(policyv1.PolicyService_ServiceDesc.ServiceName, "policies", func(context.Context) error {
				if store.Len() == 0 {
					return errors.New("no policies loaded")
				}
				return nil
			})
			if !watch {
				return nil, nil
			}
			wctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Go(func() { store.Watch(wctx, f.reloadInterval) })
			return func() error { cancel(); wg.Wait(); return nil }, nil
		},
	}
}

// openPolicyStore opens dir; when the default directory does not exist it
// serves the built-in default policy instead, and says so.
func openPolicyStore(env *serviceEnv, dir string) (*policydoc.Store, bool, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && dir == defaultPolicyDir {
		pol, err := policydoc.Parse("builtin:default.yaml", policies.Default)
		if err != nil {
			return nil, false, fmt.Errorf("built-in default policy: %w", err)
		}
		env.Log.Warn("policy directory not found; serving the built-in default policy", "policy_dir", dir)
		return policydoc.NewStatic(env.Log, pol), false, nil
	}
	store, err := policydoc.Open(dir, env.Log)
	if err != nil {
		return nil, false, config.Invalid("policy-dir", "%v", err)
	}
	return store, true, nil
}
