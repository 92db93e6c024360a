// Package pricing turns token counts and sandbox time into micro-dollars
// (1 USD = 1,000,000) from a price table kept in configuration.
package pricing

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ModelPrice is one model's price in micro-dollars per million tokens.
type ModelPrice struct {
	Input       int64 `yaml:"input"`
	CachedInput int64 `yaml:"cached_input"`
	Output      int64 `yaml:"output"`
}

// Table is the price table.
type Table struct {
	// Models maps a model name to its prices.
	Models map[string]ModelPrice `yaml:"models"`
	// CPUSecond is the price of one CPU-second, in micro-dollars.
	CPUSecond int64 `yaml:"cpu_second"`
	// GiBSecond is the price of holding one GiB of memory for one second, in micro-dollars.
	GiBSecond int64 `yaml:"gib_second"`
}

// ErrUnknownModel is returned for a model the table does not price.
var ErrUnknownModel = errors.New("model not in the price table")

// Default returns xAI's published Grok prices (USD per million tokens:
// grok-4 3.00 in / 0.75 cached / 15.00 out; the fast models 0.20 / 0.05 / 0.50;
// grok-code-fast-1 0.20 / 0.02 / 1.50; grok-3-mini 0.30 / 0.075 / 0.50) and
// compute at 20 micro-dollars a CPU-second and 3 a GiB-second.
func Default() *Table {
	return &Table{
		Models: map[string]ModelPrice{
			"grok-4":                      {Input: 3_000_000, CachedInput: 750_000, Output: 15_000_000},
			"grok-4-0709":                 {Input: 3_000_000, CachedInput: 750_000, Output: 15_000_000},
			"grok-4-fast-reasoning":       {Input: 200_000, CachedInput: 50_000, Output: 500_000},
			"grok-4-fast-non-reasoning":   {Input: 200_000, CachedInput: 50_000, Output: 500_000},
			"grok-4-1-fast-reasoning":     {Input: 200_000, CachedInput: 50_000, Output: 500_000},
			"grok-4-1-fast-non-reasoning": {Input: 200_000, CachedInput: 50_000, Output: 500_000},
			"grok-code-fast-1":            {Input: 200_000, CachedInput: 20_000, Output: 1_500_000},
			"grok-3":                      {Input: 3_000_000, CachedInput: 750_000, Output: 15_000_000},
			"grok-3-mini":                 {Input: 300_000, CachedInput: 75_000, Output: 500_000},
		},
		CPUSecond: 20,
		GiBSecond: 3,
	}
}

// Load reads a YAML price table from path. Unknown fields and negative prices
// are errors naming the line or the entry at fault.
func Load(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading price table: %w", err)
	}
	return Parse(b)
}

// Parse decodes a YAML price table.
func Parse(b []byte) (*Table, error) {
	var t Table
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Validate reports the first negative or missing price.
func (t *Table) Validate() error {
	if len(t.Models) == 0 {
		return errors.New("price table: models: at least one model is required")
	}
	names := make([]string, 0, len(t.Models))
	for name := range t.Models {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := t.Models[name]
		if strings.TrimSpace(name) == "" {
			return errors.New("price table: models: empty model name")
		}
		if p.Input < 0 || p.CachedInput < 0 || p.Output < 0 {
			return fmt.Errorf("price table: models.%s: prices must not be negative", name)
		}
	}
	if t.CPUSecond < 0 {
		return errors.New("price table: cpu_second must not be negative")
	}
	if t.GiBSecond < 0 {
		return errors.New("price table: gib_second must not be negative")
	}
	return nil
}

// LLM prices one or more model calls. Cached tokens are part of prompt tokens
// and priced at the cached rate. The result is rounded up to a whole micro-dollar.
func (t *Table) LLM(model string, promptTokens, cachedTokens, completionTokens int64) (int64, error) {
	p, ok := t.Models[model]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownModel, model)
	}
	if promptTokens < 0 || cachedTokens < 0 || completionTokens < 0 {
		return 0, errors.New("token counts must not be negative")
	}
	if cachedTokens > promptTokens {
		return 0, errors.New("cached tokens exceed prompt tokens")
	}
	sum := new(big.Int)
	add := func(tokens, price int64) {
		sum.Add(sum, new(big.Int).Mul(big.NewInt(tokens), big.NewInt(price)))
	}
	add(promptTokens-cachedTokens, p.Input)
	add(cachedTokens, p.CachedInput)
	add(completionTokens, p.Output)
	return ceilDiv(sum, big.NewInt(1_000_000))
}

// Compute prices an execution: CPU time at CPUSecond plus memory held for
// wall time at GiBSecond, rounded up to a whole micro-dollar.
func (t *Table) Compute(cpu, wall time.Duration, memoryBytes int64) (int64, error) {
	if cpu < 0 || wall < 0 || memoryBytes < 0 {
		return 0, errors.New("cpu time, wall time and memory must not be negative")
	}
	// cpu_ns * CPUSecond / 1e9 + wall_ns * mem * GiBSecond / (1e9 * 2^30)
	cpuPart := new(big.Int).Mul(big.NewInt(int64(cpu)), big.NewInt(t.CPUSecond))
	cpuPart.Mul(cpuPart, big.NewInt(1<<30))
	memPart := new(big.Int).Mul(big.NewInt(int64(wall)), big.NewInt(memoryBytes))
	memPart.Mul(memPart, big.NewInt(t.GiBSecond))
	total := cpuPart.Add(cpuPart, memPart)
	return ceilDiv(total, new(big.Int).Mul(big.NewInt(1_000_000_000), big.NewInt(1<<30)))
}

func ceilDiv(n, d *big.Int) (int64, error) {
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, errors.New("price overflows int64 micro-dollars")
	}
	return q.Int64(), nil
}
