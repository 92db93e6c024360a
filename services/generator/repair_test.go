package generator_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/airlockhq/airlock/services/generator"
)

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, code string
		outputs        []string
		repaired       bool
	}{
		{"strict", `{"code":"print(1)","explanation":"e","expected_outputs":["a.csv"]}`, "print(1)", []string{"a.csv"}, false},
		{"fenced json", "```json\n{\"code\":\"print(1)\",\"explanation\":\"e\",\"expected_outputs\":[]}\n```", "print(1)", []string{}, true},
		{"prose around", "Sure! {\"code\": \"print(1)\", \"explanation\": \"e\", \"expected_outputs\": [\"a.csv\"]} Hope it helps.", "print(1)", []string{"a.csv"}, true},
		{"trailing commas", `{"code": "print(1)", "expected_outputs": ["a.csv", "b.csv",],}`, "print(1)", []string{"a.csv", "b.csv"}, true},
		{"single quotes", `{'code': 'print("it\'s")', 'expected_outputs': ['a.csv']}`, `print("it's")`, []string{"a.csv"}, true},
		{"unquoted keys", `{code: "print(1)", expected_outputs: ["a.csv"]}`, "print(1)", []string{"a.csv"}, true},
		{"python literals", `{"code": "print(1)", "explanation": None, "expected_outputs": [], "ok": True}`, "print(1)", []string{}, true},
		{"raw newlines", "{\"code\": \"import os\nprint(os.getcwd())\n\", \"expected_outputs\": []}", "import os\nprint(os.getcwd())\n", []string{}, true},
		{"comments", "{\n// the program\n\"code\": \"print(1)\", /* none */ \"expected_outputs\": []}", "print(1)", []string{}, true},
		{"braces in code", `{"code": "d = {'a': 1}\nprint(d)", "expected_outputs": ["x.csv"],}`, "d = {'a': 1}\nprint(d)", []string{"x.csv"}, true},
		{"truncated in string", `{"code": "print(1)\nprint(2`, "print(1)\nprint(2", nil, true},
		{"truncated after key", `{"code": "print(1)", "explanation":`, "print(1)", nil, true},
		{"truncated in array", `{"code": "print(1)", "expected_outputs": ["a.csv", "b.`, "print(1)", []string{"a.csv", "b."}, true},
		{"bare python block", "Here is the code:\n```python\nimport pandas as pd\nprint(1)\n```\n", "import pandas as pd\nprint(1)\n", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, repaired, err := generator.ParseAnswer(c.in)
			require.NoError(t, err)
			require.Equal(t, c.code, a.Code)
			require.Equal(t, c.repaired, repaired)
			if c.outputs != nil {
				require.Equal(t, c.outputs, a.ExpectedOutputs)
			}
		})
	}
}

func TestParseAnswerUnrepairable(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"empty":        "   ",
		"prose":        "I cannot do that.",
		"no code":      `{"explanation": "nothing to do", "expected_outputs": []}`,
		"code not str": `{"code": 42}`,
		"shell block":  "```bash\nrm -rf /\n```",
		"garbage":      "{{{{[[[[::::,,,,",
	} {
		_, _, err := generator.ParseAnswer(in)
		require.Error(t, err, name)
	}
}

// FuzzParseAnswer: the repair layer never panics and never claims success
// without code.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{`{"code":"x"}`, "```json\n{'code': 'x',}\n```", `{code: "x`, "```python\nx\n```", `{"a": [1, {"b": }`, `\`, `{"code": "\"} {`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		a, _, err := generator.ParseAnswer(in)
		if err == nil && strings.TrimSpace(a.Code) == "" {
			t.Fatalf("success without code for %q", in)
		}
	})
}
