package pricing

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLLM(t *testing.T) {
	t.Parallel()
	tab := Default()
	// grok-4: 1000 prompt (200 cached) + 500 completion
	// = 800*3 + 200*0.75 + 500*15 = 2400 + 150 + 7500 = 10050 micro-dollars.
	got, err := tab.LLM("grok-4", 1000, 200, 500)
	if err != nil || got != 10050 {
		t.Fatalf("LLM = %d, %v; want 10050", got, err)
	}
	// One token of a cheap model rounds up to one micro-dollar.
	if got, _ := tab.LLM("grok-code-fast-1", 1, 0, 0); got != 1 {
		t.Fatalf("rounding: got %d, want 1", got)
	}
	if _, err := tab.LLM("nope", 1, 0, 0); !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("unknown model: %v", err)
	}
	if _, err := tab.LLM("grok-4", 1, 2, 0); err == nil {
		t.Fatal("cached > prompt accepted")
	}
}

func TestCompute(t *testing.T) {
	t.Parallel()
	tab := &Table{Models: map[string]ModelPrice{"m": {}}, CPUSecond: 20, GiBSecond: 3}
	got, err := tab.Compute(2*time.Second, 10*time.Second, 1<<30)
	if err != nil || got != 2*20+10*3 {
		t.Fatalf("Compute = %d, %v; want 70", got, err)
	}
	if got, _ := tab.Compute(time.Nanosecond, 0, 0); got != 1 {
		t.Fatalf("rounding: got %d, want 1", got)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tab, err := Parse([]byte("models:\n  m: {input: 1, cached_input: 1, output: 2}\ncpu_second: 5\ngib_second: 1\n"))
	if err != nil || tab.Models["m"].Output != 2 || tab.CPUSecond != 5 {
		t.Fatalf("Parse = %+v, %v", tab, err)
	}
	for in, want := range map[string]string{
		"models:\n  m: {input: -1}\n":              "models.m",
		"models:\n  m: {input: 1}\nbogus: 1\n":     "line 3",
		"cpu_second: 1\n":                          "at least one model",
		"models:\n  m: {input: 1}\ngib_second: -2": "gib_second",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want error containing %q", in, err, want)
		}
	}
}
