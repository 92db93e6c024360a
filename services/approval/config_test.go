package approval_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/services/approval"
)

func TestConfigValidateNamesTheFlag(t *testing.T) {
	t.Parallel()
	require.NoError(t, approval.DefaultConfig().Validate())
	for flag, mutate := range map[string]func(*approval.Config){
		"approval-ttl":            func(c *approval.Config) { c.TTL = 0 },
		"approval-max-ttl":        func(c *approval.Config) { c.MaxTTL = c.TTL - time.Second },
		"approval-sweep-interval": func(c *approval.Config) { c.SweepInterval = -time.Second },
		"approval-poll-interval":  func(c *approval.Config) { c.PollInterval = 0 },
	} {
		cfg := approval.DefaultConfig()
		mutate(&cfg)
		err := cfg.Validate()
		var ce *config.Error
		require.True(t, errors.As(err, &ce), "%s: %v", flag, err)
		require.Equal(t, flag, ce.Flag)
		_, err = approval.NewService(nil, cfg, nil)
		require.Error(t, err, flag)
	}
}
