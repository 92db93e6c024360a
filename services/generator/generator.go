// Package generator writes Python for a request through any OpenAI-compatible
// chat-completions API: prompt building, structured output, repair, retries and pricing.
package generator

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/pkg/pricing"
)

// Defaults for Config.
const (
	DefaultBaseURL         = "https://api.x.ai/v1"
	DefaultModel           = "grok-code-fast-1"
	DefaultTimeout         = 90 * time.Second
	DefaultMaxRetries      = 3
	DefaultMaxOutputTokens = 8192
	DefaultSampleRows      = 5
	// MaxOutputTokensLimit is the most a request may ask for.
	MaxOutputTokensLimit = 65536
)

// Errors Generate returns; the gRPC handler maps them to status codes.
var (
	// ErrNoAPIKey means the server has no key for the model API.
	ErrNoAPIKey = errors.New("no model API key: set XAI_API_KEY")
	// ErrCredentialsRejected means the model API refused the key (401/403).
	ErrCredentialsRejected = errors.New("model credentials rejected")
	// ErrRateLimited means the model API kept answering 429 until retries ran out.
	ErrRateLimited = errors.New("model API rate limit: retries exhausted")
	// ErrUnavailable means the model API kept failing (5xx, network) until retries ran out.
	ErrUnavailable = errors.New("model API unavailable: retries exhausted")
	// ErrTimeout means one call took longer than the per-call deadline.
	ErrTimeout = errors.New("model did not answer in time")
	// ErrModelRefused means the model API rejected the request itself (4xx).
	ErrModelRefused = errors.New("model API rejected the request")
	// ErrMalformedAnswer means the answer was not JSON the repair layer could fix.
	ErrMalformedAnswer = errors.New("model answer is not the requested JSON")
	// ErrInvalidRequest is a request that fails validation; see FieldError.
	ErrInvalidRequest = errors.New("invalid request")
)

// FieldError names the request field at fault.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// Unwrap makes a FieldError match ErrInvalidRequest.
func (e *FieldError) Unwrap() error { return ErrInvalidRequest }

// AnswerError is a malformed answer, with what it cost so a caller can still
// settle the budget, and an excerpt of the raw text for diagnosis.
type AnswerError struct {
	Excerpt string
	Usage   *generatorv1.TokenUsage
	Cost    int64
	Model   string
	Err     error
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("%v: %v; answer began %q", ErrMalformedAnswer, e.Err, e.Excerpt)
}

// Unwrap makes an AnswerError match ErrMalformedAnswer.
func (e *AnswerError) Unwrap() error { return ErrMalformedAnswer }

// Config configures a Generator.
type Config struct {
	// BaseURL is the API root, such as https://api.x.ai/v1.
	BaseURL string
	// APIKey authenticates to the API; empty makes Generate fail with ErrNoAPIKey.
	APIKey config.Secret
	// Model is the default model; it must be in Prices.
	Model string
	// Timeout bounds one call to the API.
	Timeout time.Duration
	// MaxRetries is how many times a 429, 5xx or network failure is retried.
	MaxRetries int
	// MaxOutputTokens is the default cap on an answer's length.
	MaxOutputTokens int
	// SampleRows is the most sample rows per table put in a prompt; 0 sends none.
	SampleRows int
	// Prices prices the tokens; nil means pricing.Default().
	Prices *pricing.Table
	// BackoffBase and BackoffMax shape the exponential backoff between
	// retries when the API sends no Retry-After; zero means 500ms and 20s.
	BackoffBase, BackoffMax time.Duration
	// MaxRetryAfter caps how long a Retry-After may make a call wait; zero means 60s.
	MaxRetryAfter time.Duration
	// HTTPClient overrides the HTTP client (tests); nil builds one.
	HTTPClient *http.Client
}

// Validate reports the first bad setting by its flag name.
func (c *Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config.Invalid("llm-base-url", "%q is not an http(s) URL", c.BaseURL)
	}
	if strings.TrimSpace(c.Model) == "" {
		return config.Invalid("llm-model", "must not be empty")
	}
	if _, ok := c.prices().Models[c.Model]; !ok {
		return config.Invalid("llm-model", "%q is not in the price table (--prices), so its cost cannot be computed", c.Model)
	}
	if c.Timeout <= 0 {
		return config.Invalid("llm-timeout", "must be positive")
	}
	if c.MaxRetries < 0 || c.MaxRetries > 10 {
		return config.Invalid("llm-max-retries", "must be between 0 and 10")
	}
	if c.MaxOutputTokens <= 0 || c.MaxOutputTokens > MaxOutputTokensLimit {
		return config.Invalid("llm-max-output-tokens", "must be between 1 and %d", MaxOutputTokensLimit)
	}
	if c.SampleRows < 0 {
		return config.Invalid("generator-sample-rows", "must not be negative")
	}
	return nil
}

func (c *Config) prices() *pricing.Table {
	if c.Prices == nil {
		return pricing.Default()
	}
	return c.Prices
}

// Generator asks a model for code.
type Generator struct {
	cfg    Config
	log    *slog.Logger
	client *openai.Client
	http   *http.Client
}

// New builds a Generator. It makes no network call: a missing or wrong key
// shows on the first Generate, never at start-up.
func New(cfg Config, log *slog.Logger) (*Generator, error) {
	if cfg.Prices == nil {
		cfg.Prices = pricing.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 500 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 20 * time.Second
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = time.Minute
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	oc := openai.DefaultConfig(string(cfg.APIKey))
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	oc.HTTPClient = &headerRecorder{next: hc}
	return &Generator{cfg: cfg, log: log, client: openai.NewClientWithConfig(oc), http: hc}, nil
}

// HasAPIKey reports whether a key is configured.
func (g *Generator) HasAPIKey() bool { return g.cfg.APIKey != "" }

// Close drops idle connections to the API.
func (g *Generator) Close() error {
	g.http.CloseIdleConnections()
	return nil
}
