package tabular

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzProfileCSV checks that any input either profiles or fails with an
// error, never panics, and that what it returns is self-consistent.
func FuzzProfileCSV(f *testing.F) {
	for _, seed := range []string{
		"a,b\n1,2\n", "a;b\r\n\"x;y\";2\r\n", "\xEF\xBB\xBFa\tb\n1\t2", "\xFF\xFEa\x00,\x00b\x00",
		"\"unterminated\n1,2", "a,\"b\"\"c\"x,d\n", "K\xF6ln,1\n", "\n\n\n", "a|b|c\n|||\n", "x\x00y",
	} {
		f.Add([]byte(seed), 2)
	}
	f.Fuzz(func(t *testing.T, data []byte, k int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		opts := Options{SampleRows: k % 4, MaxColumns: 16, MaxCellBytes: 32}.withDefaults()
		ds, err := Profile(ctx, "fuzz.csv", bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			if ds != nil {
				t.Fatal("both a profile and an error")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("profiling %d bytes took too long", len(data))
			}
			return
		}
		checkDataset(t, ds, opts)
	})
}

// FuzzProfileXLSX mutates real workbooks; the reader must never panic out
// of Profile.
func FuzzProfileXLSX(f *testing.F) {
	good := salesWorkbook(f)
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte("PK\x03\x04garbage"))
	f.Add(zipOf(f, map[string][]byte{"xl/workbook.xml": []byte("<workbook><sheets><sheet name=\"a\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>")}))
	flipped := bytes.Clone(good)
	for i := 100; i < len(flipped); i += 97 {
		flipped[i] ^= 0x5A
	}
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{SampleRows: 2, MaxUnzipBytes: 8 << 20, MaxXMLInMemory: 1 << 20, TempDir: t.TempDir()}
		ds, err := Profile(context.Background(), "fuzz.xlsx", bytes.NewReader(data), int64(len(data)), opts)
		if err != nil {
			if ds != nil {
				t.Fatal("both a profile and an error")
			}
			return
		}
		checkDataset(t, ds, opts.withDefaults())
	})
}

func checkDataset(t *testing.T, ds *Dataset, opts Options) {
	t.Helper()
	for _, s := range ds.Sheets {
		if len(s.Columns) > opts.MaxColumns {
			t.Fatalf("%d columns past the limit %d", len(s.Columns), opts.MaxColumns)
		}
		if len(s.Samples) > opts.SampleRows || int64(len(s.Samples)) > s.RowCount {
			t.Fatalf("%d samples for %d rows, limit %d", len(s.Samples), s.RowCount, opts.SampleRows)
		}
		for _, row := range s.Samples {
			if len(row) != len(s.Columns) {
				t.Fatalf("sample row of %d values for %d columns", len(row), len(s.Columns))
			}
		}
		for _, c := range s.Columns {
			if c.EmptyCount < 0 || c.EmptyCount > s.RowCount {
				t.Fatalf("column %q: %d empty of %d rows", c.Name, c.EmptyCount, s.RowCount)
			}
			if c.Type == TypeEmpty && c.EmptyCount != s.RowCount {
				t.Fatalf("column %q typed empty with %d of %d rows empty", c.Name, c.EmptyCount, s.RowCount)
			}
		}
	}
}
