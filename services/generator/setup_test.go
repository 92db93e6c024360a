package generator_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/pkg/config"
	"github.com/airlockhq/airlock/services/generator"
)

const testKey = "sk-test-0123456789"

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// call is one request the fake model received.
type call struct {
	At     time.Time
	Method string
	Path   string
	Auth   string
	Body   map[string]any
}

// fakeModel is an HTTP server speaking the chat-completions wire format; a
// handler decides each answer from the call's index.
type fakeModel struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []call
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

func newFakeModel(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *fakeModel {
	t.Helper()
	f := &fakeModel{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		f.mu.Lock()
		n := len(f.calls)
		f.calls = append(f.calls, call{At: time.Now(), Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: body})
		f.mu.Unlock()
		f.answer(n, w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeModel) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// completion writes a successful chat completion.
func completion(w http.ResponseWriter, content string, prompt, cached, completionTokens int) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-test", "object": "chat.completion", "created": 1764144000, "model": "grok-code-fast-1",
		"choices": []map[string]any{{
			"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content},
		}},
		"usage": map[string]any{
			"prompt_tokens": prompt, "completion_tokens": completionTokens, "total_tokens": prompt + completionTokens,
			"prompt_tokens_details": map[string]any{"cached_tokens": cached},
		},
	})
}

// apiError writes an error in the OpenAI error format.
func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "test_error"}})
}

const goodAnswer = `{"code":"import pandas as pd\nprint('ok')\n","explanation":"Prints ok.","expected_outputs":["top.csv"]}`

// setup starts a fake model and a Generator pointed at it.
func setup(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request), tune ...func(*generator.Config)) (*generator.Generator, *fakeModel) {
	t.Helper()
	fm := newFakeModel(t, answer)
	cfg := generator.Config{
		BaseURL:         fm.srv.URL + "/v1",
		APIKey:          config.Secret(testKey),
		Model:           "grok-code-fast-1",
		Timeout:         5 * time.Second,
		MaxRetries:      3,
		MaxOutputTokens: 1000,
		SampleRows:      5,
		BackoffBase:     5 * time.Millisecond,
		BackoffMax:      20 * time.Millisecond,
	}
	for _, f := range tune {
		f(&cfg)
	}
	g, err := generator.New(cfg, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close() })
	return g, fm
}
