package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
)

func generateRequest() *generatorv1.GenerateRequest {
	return &generatorv1.GenerateRequest{Prompt: "print hello", AllowedImports: []string{"os"}}
}

// generatorClient connects to a dev server as its admin.
func generatorClient(t *testing.T, addr, dataDir string) (generatorv1.GeneratorServiceClient, context.Context) {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dataDir, devAdminKeyFile))
	require.NoError(t, err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(key)))
	return generatorv1.NewGeneratorServiceClient(conn), ctx
}

// TestGeneratorSettings starts `airlock dev` against a chat-completions
// server through the generator's settings: the key from XAI_API_KEY, the
// API from AIRLOCK_LLM_BASE_URL, the model from --llm-model. It does not
// run in parallel because it sets process environment variables.
func TestGeneratorSettings(t *testing.T) {
	var gotAuth atomic.Value
	var gotModel atomic.Value
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		var body struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		gotModel.Store(body.Model)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "x", "object": "chat.completion", "model": body.Model,
			"choices": []map[string]any{{"index": 0, "finish_reason": "stop", "message": map[string]any{
				"role": "assistant", "content": `{"code":"print('hello')","explanation":"Says hello.","expected_outputs":[]}`}}},
			"usage": map[string]any{"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
		})
	}))
	defer fake.Close()
	t.Setenv("XAI_API_KEY", "xai-secret-for-test")
	t.Setenv("AIRLOCK_LLM_BASE_URL", fake.URL+"/v1")

	dataDir := t.TempDir()
	addr := devServer(t, "--data-dir", dataDir, "--llm-model", "grok-3-mini")
	client, ctx := generatorClient(t, addr, dataDir)
	resp, err := client.Generate(ctx, generateRequest())
	require.NoError(t, err)
	require.Equal(t, "print('hello')", resp.GetCode())
	require.Equal(t, "Bearer xai-secret-for-test", gotAuth.Load())
	require.Equal(t, "grok-3-mini", gotModel.Load())
	// grok-3-mini: 100 x $0.30 + 10 x $0.50 per million = 30 + 5 micro-dollars.
	require.EqualValues(t, 35, resp.GetCostMicros())
}

// TestGeneratorWithoutKey: with no key the service starts, stays healthy,
// and says plainly what is missing.
func TestGeneratorWithoutKey(t *testing.T) {
	t.Setenv("XAI_API_KEY", "")
	t.Setenv("AIRLOCK_LLM_API_KEY", "")
	dataDir := t.TempDir()
	addr := devServer(t, "--data-dir", dataDir)
	client, ctx := generatorClient(t, addr, dataDir)
	_, err := client.Generate(ctx, generateRequest())
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.Equal(t, "no model API key: set XAI_API_KEY", status.Convert(err).Message())
}

// TestGeneratorBadSettings does not run in parallel: other services' specs
// keep flag state in package variables that in-process dev servers share.
func TestGeneratorBadSettings(t *testing.T) {
	for flag, value := range map[string]string{
		"--llm-base-url":    "not a url",
		"--llm-model":       "unpriced-model",
		"--llm-timeout":     "0s",
		"--llm-max-retries": "-1",
	} {
		err := run(context.Background(), []string{"dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), flag, value}, nil, nil)
		require.ErrorContains(t, err, flag)
	}
}
