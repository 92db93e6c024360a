package tabular

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"
)

// pandasPython is Debian's Python with pandas, the interpreter the sandbox
// runs; the profile must describe files the way it reads them.
const pandasPython = "/usr/bin/python3"

// pandasReader reads each file with the arguments a profile suggests and
// prints, per table, the row count, the column names and their dtypes.
const pandasReader = `
import json, sys
import pandas as pd
out = []
for spec in json.load(sys.stdin):
    if spec["format"] == "xlsx":
        tables = [pd.read_excel(spec["path"], sheet_name=sh["name"], header=max(sh["header_row"] - 1, 0))
                  for sh in spec["sheets"]]
    else:
        kw = dict(sep=spec["sep"], encoding=spec["encoding"])
        if spec["decimal_comma"]:
            kw["decimal"] = ","
        df = pd.read_csv(spec["path"], **kw)
        for col, fmt in spec["date_formats"].items():
            pd.to_datetime(df[col], format=fmt)  # raises if the format is wrong
        tables = [df]
    out.append([{"rows": len(df), "columns": [str(c) for c in df.columns],
                 "dtypes": [str(t) for t in df.dtypes]} for df in tables])
json.dump(out, sys.stdout)
`

// TestProfilesAgreeWithPandas profiles files of every supported kind and
// checks row counts, column names and types against what pandas reads.
func TestProfilesAgreeWithPandas(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string][]byte{
		"plain.csv":   []byte("id,name,amount,paid,day\n1,Ann,12.5,true,2024-01-02\n2,Bob,,false,2024-01-03\n\n3,\"Cy, Jr\",7.25,true,2024-02-01\n"),
		"bom.csv":     []byte("\xEF\xBB\xBFregion;units\nNord;3\nSüd;4\n"),
		"cp1252.csv":  []byte("Kunde;Betrag;Menge\nM\xFCller \x80;3,50;1\nK\xF6ln;1.234,75;2\n"),
		"tabs.tsv":    []byte("a\tb\tc\tok\tyn\n1\tx\t\tTRUE\tyes\n2\ty\t\tFalse\tno\n"),
		"pipes.csv":   []byte("sku|qty|note\nA-1|5|\"multi\nline\"\nB-2|7|NA\n"),
		"dates.csv":   []byte("iso;dmy;us;dot;mon;stamp;iso8601;frac\n2024-01-31;31/01/2024;12/31/2024 08:30;31.01.2024;5-Mar-24;2024-01-31 10:00:00;2024-01-31T10:00:00Z;2024-01-31T10:00:00.25+01:00\n2024-02-29;01/02/2024;1/2/2024 17:05;1.2.2024;15-Apr-24;2024-02-01 23:59:59;2024-02-01T10:00:00Z;2024-02-01T10:00:00.5Z\n"),
		"trail.csv":   []byte("a,b,,\n1,2,,\n3,4,5,\n"),
		"dupes.csv":   []byte("a,a,,b\n1,2,3,4\n"),
		"utf16.csv":   utf16LE("x,y\r\n1,2.5\r\n3,4.5\r\n"),
		"sales.xlsx":  salesWorkbook(t),
		"offset.xlsx": offsetWorkbook(t),
	}
	type sheetSpec struct {
		Name      string `json:"name"`
		HeaderRow int    `json:"header_row"`
	}
	type spec struct {
		Path         string            `json:"path"`
		Format       string            `json:"format"`
		Sep          string            `json:"sep"`
		Encoding     string            `json:"encoding"`
		DecimalComma bool              `json:"decimal_comma"`
		DateFormats  map[string]string `json:"date_formats"`
		Sheets       []sheetSpec       `json:"sheets"`
	}
	var specs []spec
	var profiles []*Dataset
	for name, data := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, data, 0o600))
		ds, err := ProfileFile(context.Background(), path, Options{})
		require.NoError(t, err, name)
		s := spec{Path: path, Format: ds.Format.String(), Sep: ds.Delimiter, Encoding: ds.Encoding, DateFormats: map[string]string{}}
		for _, sh := range ds.Sheets {
			s.Sheets = append(s.Sheets, sheetSpec{sh.Name, sh.HeaderRow})
			for _, c := range sh.Columns {
				s.DecimalComma = s.DecimalComma || c.DecimalComma
				if c.DateFormat != "" {
					s.DateFormats[c.Name] = c.DateFormat
				}
			}
		}
		specs = append(specs, s)
		profiles = append(profiles, ds)
	}
	in, err := json.Marshal(specs)
	require.NoError(t, err)
	cmd := exec.Command(pandasPython, "-c", pandasReader)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "running pandas (install python3-pandas python3-openpyxl): %s", stderr.String())
	var got [][]struct {
		Rows    int64    `json:"rows"`
		Columns []string `json:"columns"`
		Dtypes  []string `json:"dtypes"`
	}
	require.NoError(t, json.Unmarshal(out, &got))
	for i, ds := range profiles {
		for j, sh := range ds.Sheets {
			pd := got[i][j]
			where := ds.Name + " " + sh.Name
			require.Equal(t, pd.Rows, sh.RowCount, "%s: row count", where)
			names := []string{}
			for _, c := range sh.Columns {
				names = append(names, c.Name)
			}
			require.Equal(t, pd.Columns, names, "%s: column names", where)
			for k, c := range sh.Columns {
				require.True(t, typeMatches(c, sh.RowCount, pd.Dtypes[k], ds.Format),
					"%s: column %q profiled %s (%d empty), pandas reads %s", where, c.Name, c.Type, c.EmptyCount, pd.Dtypes[k])
			}
		}
	}
}

// typeMatches says whether pandas' dtype is what a column of this profile
// reads as. Missing values turn integers into floats and booleans into
// objects; dates stay text in a CSV unless parsed on purpose.
func typeMatches(c Column, rows int64, dtype string, f Format) bool {
	switch c.Type {
	case TypeInteger:
		return dtype == "int64" || (c.EmptyCount > 0 && dtype == "float64")
	case TypeDecimal:
		return dtype == "float64"
	case TypeBoolean:
		return dtype == "bool" || (c.EmptyCount > 0 && (dtype == "object" || dtype == "float64"))
	case TypeDate:
		if f == FormatXLSX {
			return strings.HasPrefix(dtype, "datetime64")
		}
		return dtype == "object"
	case TypeText:
		return dtype == "object"
	case TypeEmpty:
		return c.EmptyCount == rows && (dtype == "float64" || dtype == "object")
	}
	return false
}

func utf16LE(s string) []byte {
	out := []byte{0xFF, 0xFE}
	for _, r := range s {
		out = append(out, byte(r), byte(r>>8))
	}
	return out
}

// offsetWorkbook has a table that starts at B3, with a blank row inside it
// and a second, empty sheet.
func offsetWorkbook(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for cell, v := range map[string]any{"B3": "a", "C3": "b", "B4": 1, "C4": 2.5, "B6": 3, "C6": 4} {
		require.NoError(t, f.SetCellValue("Sheet1", cell, v))
	}
	_, err := f.NewSheet("Empty")
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	return buf.Bytes()
}
