package generator_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	policyv1 "github.com/airlockhq/airlock/gen/go/airlock/policy/v1"
	"github.com/airlockhq/airlock/pkg/tabular"
	"github.com/airlockhq/airlock/pkg/tabular/tabularpb"
	"github.com/airlockhq/airlock/services/generator"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden (and testdata/sales.xlsx when missing)")

var defaultImports = []string{"pandas", "numpy", "openpyxl", "os", "csv", "json", "datetime", "pathlib", "glob", "math"}

// profile profiles a testdata file the way the orchestrator does.
func profile(t *testing.T, name string, samples int) *generatorv1.DatasetProfile {
	t.Helper()
	ds, err := tabular.ProfileFile(context.Background(), filepath.Join("testdata", name), tabular.Options{SampleRows: samples})
	require.NoError(t, err)
	return tabularpb.ToProto(ds)
}

// golden compares the built prompt with testdata/<name>.golden.
func golden(t *testing.T, name string, req *generatorv1.GenerateRequest, sampleRows int) {
	t.Helper()
	system, user := generator.BuildPrompt(req, sampleRows)
	got := "=== system ===\n" + system + "\n=== user ===\n" + user
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	require.Equal(t, string(want), got, "prompt changed; if on purpose, run go test ./services/generator -update and review the diff")
}

func TestPromptGoldenCSV(t *testing.T) {
	t.Parallel()
	golden(t, "prompt_csv", &generatorv1.GenerateRequest{
		Prompt:         "Which 3 customers have the highest credit limit per country? Write the result to top_customers.csv.",
		AllowedImports: defaultImports,
		Datasets:       []*generatorv1.DatasetProfile{profile(t, "customers.csv", 5)},
	}, 5)
}

func TestPromptGoldenXLSX(t *testing.T) {
	t.Parallel()
	writeSalesWorkbook(t)
	golden(t, "prompt_xlsx", &generatorv1.GenerateRequest{
		Prompt:         "Total revenue per region and month, as an Excel file with one sheet per region.",
		AllowedImports: defaultImports,
		Datasets:       []*generatorv1.DatasetProfile{profile(t, "sales.xlsx", 2)},
	}, 5)
}

// TestPromptGoldenFeedback pins the corrective prompt: policy findings and an
// execution error after a first attempt, for a tenant that shares no rows.
func TestPromptGoldenFeedback(t *testing.T) {
	t.Parallel()
	golden(t, "prompt_feedback", &generatorv1.GenerateRequest{
		Prompt:         "Which 3 customers have the highest credit limit per country? Write the result to top_customers.csv.",
		AllowedImports: defaultImports,
		Datasets:       []*generatorv1.DatasetProfile{profile(t, "customers.csv", 3)},
		Feedback: &generatorv1.Feedback{
			PreviousCode: "import subprocess\nimport pandas as pd\ndf = pd.read_csv('/data/in/customers.csv', sep=';')\nsubprocess.run(['ls'])\n",
			Findings: []*policyv1.Finding{
				{RuleId: "import.not_allowed", Line: 1, Column: 1, Snippet: "import subprocess", Message: "subprocess is not in the allowed imports",
					FixHint: "Remove the import; the sandbox cannot start processes."},
				{RuleId: "call.process", Line: 4, Column: 1, Snippet: "subprocess.run(['ls'])", Message: "starts a process",
					FixHint: "List files with os.listdir('/data/in') instead."},
			},
			ExecutionError: "Traceback (most recent call last):\n  File \"/tmp/main.py\", line 3, in <module>\nKeyError: 'credit'",
		},
	}, 0)
}

// writeSalesWorkbook creates testdata/sales.xlsx with -update when it is
// missing; the committed file keeps the golden prompt's sizes stable.
func writeSalesWorkbook(t *testing.T) {
	t.Helper()
	path := filepath.Join("testdata", "sales.xlsx")
	if _, err := os.Stat(path); err == nil || !*update {
		return
	}
	f := excelize.NewFile()
	defer f.Close()
	require.NoError(t, f.SetSheetName("Sheet1", "Orders"))
	rows := [][]any{{"Order date", "Region", "Customer", "Units", "Revenue", "Paid"}}
	regions := []string{"North", "South", "East", "West"}
	for i := 0; i < 40; i++ {
		rows = append(rows, []any{time.Date(2025, time.Month(1+i%6), 1+i%27, 0, 0, 0, 0, time.UTC),
			regions[i%4], "Customer " + string(rune('A'+i%26)), 1 + i%9, float64(100+i*37) + 0.5, i%3 != 0})
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		require.NoError(t, f.SetSheetRow("Orders", cell, &r))
	}
	_, err := f.NewSheet("Targets")
	require.NoError(t, err)
	for i, r := range [][]any{{"Region", "Monthly target", "Manager"}, {"North", 5000}, {"South", 4200, "Ana"}, {"East", 3900, "Li"}, {"West", 4100.75, "Sam"}} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		require.NoError(t, f.SetSheetRow("Targets", cell, &r))
	}
	require.NoError(t, f.SaveAs(path))
}

func TestPromptHeaderRowAndTruncation(t *testing.T) {
	t.Parallel()
	_, user := generator.BuildPrompt(&generatorv1.GenerateRequest{
		Prompt: "sum it",
		Datasets: []*generatorv1.DatasetProfile{{
			Name: "report.xlsx", Format: generatorv1.DatasetFormat_DATASET_FORMAT_XLSX,
			Sheets: []*generatorv1.SheetProfile{
				{Name: "Q1", HeaderRow: 3, RowCount: 10, Truncated: true,
					Columns:    []*generatorv1.ColumnProfile{{Name: "n", Type: generatorv1.ColumnType_COLUMN_TYPE_INTEGER}},
					SampleRows: []*generatorv1.SampleRow{{Values: []string{"1"}}, {Values: []string{"2"}}}},
				{Name: "Blank"},
			},
		}},
	}, 1)
	require.Contains(t, user, `pandas.read_excel("/data/in/report.xlsx", sheet_name="Q1", header=2)`)
	require.Contains(t, user, "The header is on row 3")
	require.Contains(t, user, "at least 10 data rows")
	require.Contains(t, user, "First 1 row(s)", "the server's sample cap applies")
	require.NotContains(t, user, `["2"]`)
	require.Contains(t, user, "empty: no header row and no data")
}

func TestPromptOutputDirFollowsImports(t *testing.T) {
	t.Parallel()
	for imports, want := range map[string]string{
		"pandas,os":      `os.makedirs("/data/out", exist_ok=True)`,
		"":               `os.makedirs("/data/out", exist_ok=True)`,
		"pandas,pathlib": `pathlib.Path("/data/out").mkdir(parents=True, exist_ok=True)`,
		"pandas":         "directly under /data/out, which exists",
	} {
		var list []string
		if imports != "" {
			list = strings.Split(imports, ",")
		}
		system, _ := generator.BuildPrompt(&generatorv1.GenerateRequest{Prompt: "x", AllowedImports: list}, 0)
		require.Contains(t, system, want, imports)
		require.Contains(t, system, "Only files under /data/out are kept", imports)
	}
}
