package generator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
)

// answerSchema is the JSON schema the model's answer must follow.
var answerSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "code": {"type": "string", "description": "The complete Python 3 program."},
    "explanation": {"type": "string", "description": "Two or three sentences on what the program does."},
    "expected_outputs": {"type": "array", "items": {"type": "string"}, "description": "File names the program writes under /data/out."}
  },
  "required": ["code", "explanation", "expected_outputs"],
  "additionalProperties": false
}`)

// Generate asks the model for code (or, with feedback, corrected code). The
// request must already be valid (see Validate).
func (g *Generator) Generate(ctx context.Context, req *generatorv1.GenerateRequest) (*generatorv1.GenerateResponse, error) {
	if !g.HasAPIKey() {
		return nil, ErrNoAPIKey
	}
	if err := g.Validate(req); err != nil {
		return nil, err
	}
	model := req.GetModel()
	if model == "" {
		model = g.cfg.Model
	}
	maxTokens := int(req.GetMaxOutputTokens())
	if maxTokens == 0 {
		maxTokens = g.cfg.MaxOutputTokens
	}
	system, user := BuildPrompt(req, g.cfg.SampleRows)
	if n := len(system) + len(user); n > maxPromptTotalBytes {
		return nil, &FieldError{Field: "datasets", Reason: fmt.Sprintf("the profiles make a prompt of %d bytes, at most %d; send fewer files, sheets or columns", n, maxPromptTotalBytes)}
	}
	creq := openai.ChatCompletionRequest{
		Model: model,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: system},
			{Role: openai.ChatMessageRoleUser, Content: user},
		},
		ResponseFormat: &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name: "python_program", Schema: answerSchema, Strict: true,
			},
		},
	}
	setMaxTokens(&creq, maxTokens)

	start := time.Now()
	resp, attempts, err := g.call(ctx, creq)
	if err != nil {
		g.log.WarnContext(ctx, "model call failed", "model", model, "attempts", attempts,
			"duration", time.Since(start), "error", err)
		return nil, err
	}
	usage := &generatorv1.TokenUsage{
		PromptTokens:     int64(resp.Usage.PromptTokens),
		CompletionTokens: int64(resp.Usage.CompletionTokens),
	}
	if d := resp.Usage.PromptTokensDetails; d != nil {
		usage.CachedPromptTokens = min(int64(d.CachedTokens), usage.PromptTokens)
	}
	cost, err := g.cfg.Prices.LLM(model, max(usage.PromptTokens, 0), max(usage.CachedPromptTokens, 0), max(usage.CompletionTokens, 0))
	if err != nil {
		return nil, fmt.Errorf("pricing %s: %w", model, err)
	}
	answered := resp.Model
	if answered == "" {
		answered = model
	}
	var content, finish string
	if len(resp.Choices) > 0 {
		content = resp.Choices[0].Message.Content
		finish = string(resp.Choices[0].FinishReason)
	}
	ans, repaired, perr := ParseAnswer(content)
	g.log.InfoContext(ctx, "model answered", "model", answered, "attempts", attempts,
		"duration", time.Since(start), "prompt_tokens", usage.PromptTokens,
		"cached_prompt_tokens", usage.CachedPromptTokens, "completion_tokens", usage.CompletionTokens,
		"cost_micros", cost, "finish_reason", finish, "repaired", repaired, "parse_error", perr)
	if perr != nil {
		return nil, &AnswerError{Excerpt: excerpt(content, 300), Usage: usage, Cost: cost, Model: answered, Err: perr}
	}
	return &generatorv1.GenerateResponse{
		Code:            ans.Code,
		Explanation:     ans.Explanation,
		ExpectedOutputs: ans.ExpectedOutputs,
		Model:           answered,
		Usage:           usage,
		CostMicros:      cost,
		Repaired:        repaired,
	}, nil
}

// setMaxTokens uses max_completion_tokens for the reasoning families that
// refuse max_tokens, and max_tokens, which every compatible server
// (xAI, vLLM, Ollama) understands, for the rest.
func setMaxTokens(req *openai.ChatCompletionRequest, n int) {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5"} {
		if strings.HasPrefix(req.Model, p) {
			req.MaxCompletionTokens = n
			return
		}
	}
	//lint:ignore SA1019 max_tokens is what OpenAI-compatible servers other than OpenAI's understand.
	req.MaxTokens = n
}

// call makes the API call, retrying 429, 408, 409, 5xx and network failures with
// exponential backoff and jitter, or after the server's Retry-After.
func (g *Generator) call(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, int, error) {
	var last error
	for attempt := 0; ; attempt++ {
		hdr := &responseHeaders{}
		callCtx, cancel := context.WithTimeout(withHeaders(ctx, hdr), g.cfg.Timeout)
		resp, err := g.client.CreateChatCompletion(callCtx, req)
		timedOut := errors.Is(callCtx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return resp, attempt + 1, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return resp, attempt + 1, fmt.Errorf("model call: %w", ctxErr)
		}
		if timedOut {
			return resp, attempt + 1, fmt.Errorf("%w: no answer within %s (--llm-timeout)", ErrTimeout, g.cfg.Timeout)
		}
		status := httpStatus(err)
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return resp, attempt + 1, fmt.Errorf("%w (HTTP %d): check XAI_API_KEY or AIRLOCK_LLM_API_KEY", ErrCredentialsRejected, status)
		case status == http.StatusTooManyRequests:
			last = fmt.Errorf("%w after %d attempts: %s", ErrRateLimited, attempt+1, apiMessage(err))
		case status >= 500 || status == 0 || status == http.StatusRequestTimeout || status == http.StatusConflict:
			last = fmt.Errorf("%w after %d attempts: %s", ErrUnavailable, attempt+1, apiMessage(err))
		default:
			return resp, attempt + 1, fmt.Errorf("%w (HTTP %d): %s", ErrModelRefused, status, apiMessage(err))
		}
		if attempt >= g.cfg.MaxRetries {
			return resp, attempt + 1, last
		}
		wait := g.backoff(attempt)
		if ra, ok := hdr.retryAfter(time.Now()); ok {
			wait = min(ra, g.cfg.MaxRetryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return resp, attempt + 1, fmt.Errorf("%w; the caller's deadline is sooner than the next retry", last)
		}
		g.log.InfoContext(ctx, "retrying model call", "attempt", attempt+1, "status", status, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, attempt + 1, fmt.Errorf("model call: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is exponential backoff with "equal jitter": a random wait in [d/2, d] with
// d = base * 2^attempt, capped.
func (g *Generator) backoff(attempt int) time.Duration {
	d := g.cfg.BackoffMax
	if attempt < 30 {
		d = min(g.cfg.BackoffBase<<attempt, g.cfg.BackoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

func httpStatus(err error) int {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return apiErr.HTTPStatusCode
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return reqErr.HTTPStatusCode
	}
	return 0
}

// apiMessage is the provider's error message, shortened; never a request
// header, so never the key.
func apiMessage(err error) string {
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("HTTP %d: %s", apiErr.HTTPStatusCode, excerpt(apiErr.Message, 200))
	}
	var reqErr *openai.RequestError
	if errors.As(err, &reqErr) {
		return fmt.Sprintf("HTTP %d: %s", reqErr.HTTPStatusCode, excerpt(string(reqErr.Body), 200))
	}
	return excerpt(err.Error(), 200)
}

// excerpt shortens s to n bytes at a rune boundary.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utfStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utfStart(b byte) bool { return b&0xC0 != 0x80 }

// responseHeaders carries a failed response's Retry-After out of the
// go-openai client, which does not expose headers on errors.
type responseHeaders struct {
	mu    sync.Mutex
	value string
}

func (h *responseHeaders) retryAfter(now time.Time) (time.Duration, bool) {
	h.mu.Lock()
	v := strings.TrimSpace(h.value)
	h.mu.Unlock()
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && secs < 1e6 {
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

type headersKey struct{}

func withHeaders(ctx context.Context, h *responseHeaders) context.Context {
	return context.WithValue(ctx, headersKey{}, h)
}

// headerRecorder is the HTTP client go-openai uses: it notes Retry-After on
// failed responses in the holder the call put in the request's context.
type headerRecorder struct{ next *http.Client }

func (r *headerRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.next.Do(req)
	if err == nil && resp.StatusCode >= 400 {
		if h, ok := req.Context().Value(headersKey{}).(*responseHeaders); ok {
			h.mu.Lock()
			h.value = resp.Header.Get("Retry-After")
			h.mu.Unlock()
		}
	}
	return resp, err
}
