package tabular

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"
)

// salesWorkbook builds a two-sheet workbook like the ones small businesses
// send: typed cells, a blank row, an empty third column in one sheet.
func salesWorkbook(t testing.TB) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	require.NoError(t, f.SetSheetName("Sheet1", "Sales"))
	rows := [][]any{
		{"Date", "Region", "Customer", "Units", "Revenue", "Paid"},
		{time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC), "North", "Acme GmbH", 12, 1499.5, true},
		{time.Date(2024, 1, 6, 0, 0, 0, 0, time.UTC), "South", "Bolt Ltd", 3, 310.25, false},
		{},
		{time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), "North", "Cobalt SA", 7, 880, true},
	}
	for i, r := range rows {
		cell, err := excelize.CoordinatesToCellName(1, i+1)
		require.NoError(t, err)
		require.NoError(t, f.SetSheetRow("Sales", cell, &r))
	}
	_, err := f.NewSheet("Customers")
	require.NoError(t, err)
	for i, r := range [][]any{
		{"Customer", "Country", "Notes"},
		{"Acme GmbH", "DE"},
		{"Bolt Ltd", "UK"},
	} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		require.NoError(t, f.SetSheetRow("Customers", cell, &r))
	}
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	return buf.Bytes()
}

func TestProfileXLSX(t *testing.T) {
	t.Parallel()
	data := salesWorkbook(t)
	ds, err := profileBytes(t, "sales.xlsx", data, Options{SampleRows: 2})
	require.NoError(t, err)
	require.Equal(t, FormatXLSX, ds.Format)
	require.EqualValues(t, len(data), ds.SizeBytes)
	require.Len(t, ds.Sheets, 2)
	sales := ds.Sheets[0]
	require.Equal(t, "Sales", sales.Name)
	require.EqualValues(t, 4, sales.RowCount, "pandas.read_excel keeps the blank row between data rows")
	require.Equal(t, []Column{
		col("Date", TypeDate, 1), col("Region", TypeText, 1), col("Customer", TypeText, 1),
		col("Units", TypeInteger, 1), col("Revenue", TypeDecimal, 1), col("Paid", TypeBoolean, 1),
	}, sales.Columns)
	require.Len(t, sales.Samples, 2)
	require.Equal(t, "North", sales.Samples[0][1])
	require.Equal(t, 1, sales.HeaderRow)
	cust := ds.Sheets[1]
	require.Equal(t, "Customers", cust.Name)
	require.EqualValues(t, 2, cust.RowCount)
	require.Equal(t, col("Notes", TypeEmpty, 2), cust.Columns[2])

	// The same workbook from a path.
	path := filepath.Join(t.TempDir(), "sales.xlsx")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	fromFile, err := ProfileFile(context.Background(), path, Options{SampleRows: 2})
	require.NoError(t, err)
	require.Equal(t, ds, fromFile)
}

// zipOf builds a zip archive from name -> content.
func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, content := range files {
		fw, err := w.Create(name)
		require.NoError(t, err)
		_, err = fw.Write(content)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestProfileXLSXHostile(t *testing.T) {
	t.Parallel()
	good := salesWorkbook(t)
	// A zip bomb: one part that inflates to far more than the unzip limit.
	bomb := zipOf(t, map[string][]byte{
		"[Content_Types].xml":      []byte(`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`),
		"xl/worksheets/sheet1.xml": bytes.Repeat([]byte{' '}, 8<<20),
	})
	cases := map[string]struct {
		data []byte
		opts Options
		err  error
	}{
		"not a zip":     {[]byte("this is plain text, not a workbook"), Options{}, ErrCorrupt},
		"truncated":     {good[:len(good)/2], Options{}, ErrCorrupt},
		"empty":         {nil, Options{}, ErrCorrupt},
		"encrypted":     {append(append([]byte{}, oleHeader...), make([]byte, 512)...), Options{}, ErrCorrupt},
		"empty zip":     {zipOf(t, map[string][]byte{}), Options{}, ErrCorrupt},
		"no workbook":   {zipOf(t, map[string][]byte{"hello.txt": []byte("hi")}), Options{}, ErrCorrupt},
		"zip bomb":      {bomb, Options{MaxUnzipBytes: 1 << 20, MaxXMLInMemory: 1 << 20}, ErrTooLarge},
		"too big":       {good, Options{MaxInMemoryXLSX: 100}, ErrTooLarge},
		"too many tabs": {good, Options{MaxSheets: 1}, ErrTooLarge},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ds, err := profileBytes(t, "hostile.xlsx", c.data, c.opts)
			require.ErrorIs(t, err, c.err)
			require.Nil(t, ds)
			require.Contains(t, err.Error(), "hostile.xlsx")
		})
	}
}

func TestProfileXLSXLimitsRows(t *testing.T) {
	t.Parallel()
	ds, err := profileBytes(t, "sales.xlsx", salesWorkbook(t), Options{MaxRows: 1})
	require.NoError(t, err)
	require.True(t, ds.Sheets[0].Truncated)
	require.EqualValues(t, 1, ds.Sheets[0].RowCount)
}
