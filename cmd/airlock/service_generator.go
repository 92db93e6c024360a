package main

import (
	"context"
	"os"

	"github.com/spf13/pflag"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/services/generator"
)

// llmKeyEnv are the variables the model API key is read from, first set
// wins. The key is never a flag, so it never shows in a process listing.
var llmKeyEnv = []string{"AIRLOCK_LLM_API_KEY", "XAI_API_KEY"}

// generatorService writes code through an OpenAI-compatible model; see
// services/generator. Without a key it still starts and answers Generate
// with FailedPrecondition, so `airlock dev` works for supplied-code runs.
func generatorService() *serviceSpec {
	cfg := generator.Config{
		BaseURL:         generator.DefaultBaseURL,
		Model:           generator.DefaultModel,
		Timeout:         generator.DefaultTimeout,
		MaxRetries:      generator.DefaultMaxRetries,
		MaxOutputTokens: generator.DefaultMaxOutputTokens,
		SampleRows:      generator.DefaultSampleRows,
	}
	return &serviceSpec{
		Name:     "generator",
		FullName: generatorv1.GeneratorService_ServiceDesc.ServiceName,
		Rules:    generator.Rules(),
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&cfg.BaseURL, "llm-base-url", cfg.BaseURL, "OpenAI-compatible API root (xAI, OpenAI, vLLM, Ollama); the key comes from XAI_API_KEY or AIRLOCK_LLM_API_KEY")
			fs.StringVar(&cfg.Model, "llm-model", cfg.Model, "default model; it must be in the price table (--prices)")
			fs.DurationVar(&cfg.Timeout, "llm-timeout", cfg.Timeout, "deadline of one call to the model API")
			fs.IntVar(&cfg.MaxRetries, "llm-max-retries", cfg.MaxRetries, "retries of a call that got 429, 5xx or a network error")
			fs.IntVar(&cfg.MaxOutputTokens, "llm-max-output-tokens", cfg.MaxOutputTokens, "default cap on the tokens of one answer")
			fs.IntVar(&cfg.SampleRows, "generator-sample-rows", cfg.SampleRows, "most sample rows per table put in a prompt; 0 sends the model no rows")
		},
		Start: func(_ context.Context, env *serviceEnv) (func() error, error) {
			c := cfg
			c.Prices = env.Prices
			for _, name := range llmKeyEnv {
				if v := os.Getenv(name); v != "" {
					c.APIKey = config.Secret(v)
					break
				}
			}
			log := env.Log.With("service", "generator")
			gen, err := generator.New(c, log)
			if err != nil {
				return nil, err
			}
			log.Info("generator configured", "llm_base_url", c.BaseURL, "llm_model", c.Model,
				"llm_timeout", c.Timeout, "llm_max_retries", c.MaxRetries, "generator_sample_rows", c.SampleRows,
				"llm_api_key", c.APIKey)
			if !gen.HasAPIKey() {
				log.Warn("no model API key: Generate answers FailedPrecondition until XAI_API_KEY or AIRLOCK_LLM_API_KEY is set")
			}
			generatorv1.RegisterGeneratorServiceServer(env.Server.GRPC(), generator.NewHandler(gen, log))
			return gen.Close, nil
		},
	}
}
