package tabular

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// col is a Column without comma decimals.
func col(name string, t ColumnType, empty int64) Column {
	return Column{Name: name, Type: t, EmptyCount: empty}
}

// profileBytes profiles data as a file of the given name.
func profileBytes(t *testing.T, name string, data []byte, opts Options) (*Dataset, error) {
	t.Helper()
	return Profile(context.Background(), name, bytes.NewReader(data), int64(len(data)), opts)
}

func TestProfileCSVTypesAndCounts(t *testing.T) {
	t.Parallel()
	data := "id,name,amount,paid,joined,note,blank\n" +
		"1,Ann,12.50,true,2024-01-15,,\n" +
		"2,Bob,7,false,2024-02-01,NA,\n" +
		"\n" +
		"3,\"Smith, Jo\",-3.25e2,TRUE,2024-03-09,\"said \"\"hi\"\"\nthen left\",\n"
	ds, err := profileBytes(t, "customers.csv", []byte(data), Options{SampleRows: 2})
	require.NoError(t, err)
	require.Equal(t, FormatCSV, ds.Format)
	require.Equal(t, "utf-8", ds.Encoding)
	require.Equal(t, ",", ds.Delimiter)
	require.Len(t, ds.Sheets, 1)
	s := ds.Sheets[0]
	require.EqualValues(t, 3, s.RowCount)
	want := []Column{
		col("id", TypeInteger, 0), col("name", TypeText, 0), col("amount", TypeDecimal, 0),
		col("paid", TypeBoolean, 0), {Name: "joined", Type: TypeDate, DateFormat: "%Y-%m-%d"}, col("note", TypeText, 2), col("blank", TypeEmpty, 3),
	}
	require.Equal(t, want, s.Columns)
	require.Equal(t, [][]string{
		{"1", "Ann", "12.50", "true", "2024-01-15", "", ""},
		{"2", "Bob", "7", "false", "2024-02-01", "NA", ""},
	}, s.Samples)
	require.False(t, s.Truncated)
}

func TestProfileCSVEncodings(t *testing.T) {
	t.Parallel()
	utf16le := func(s string) []byte {
		out := []byte{0xFF, 0xFE}
		for _, r := range s {
			out = append(out, byte(r), byte(r>>8))
		}
		return out
	}
	cases := []struct {
		name, enc, firstName string
		data                 []byte
	}{
		{"utf8", "utf-8", "Müller", []byte("name;city\nMüller;Köln\n")},
		{"utf8-bom", "utf-8-sig", "Müller", []byte("\xEF\xBB\xBFname;city\nMüller;Köln\n")},
		// 0x80 is the euro sign in cp1252.
		{"cp1252", "cp1252", "M\u00fcller \u20ac", []byte("name;city\nM\xFCller \x80;K\xF6ln\n")},
		// 0x81 is undefined in cp1252, so the file is latin-1.
		{"latin1", "latin-1", "M\u00fcller\u0081", []byte("name;city\nM\xFCller\x81;K\xF6ln\n")},
		{"utf16", "utf-16", "Müller", utf16le("name;city\r\nMüller;Köln\r\n")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ds, err := profileBytes(t, "people.csv", c.data, Options{SampleRows: 1})
			require.NoError(t, err)
			require.Equal(t, c.enc, ds.Encoding)
			require.Equal(t, ";", ds.Delimiter)
			s := ds.Sheets[0]
			require.Equal(t, "name", s.Columns[0].Name, "the byte-order mark must not leak into the header")
			require.Equal(t, "city", s.Columns[1].Name)
			require.EqualValues(t, 1, s.RowCount)
			require.Equal(t, c.firstName, s.Samples[0][0])
		})
	}
}

// TestProfileCSVLateLatin1 puts the first non-UTF-8 byte past the head, so
// the first pass must notice it and read the file again as cp1252.
func TestProfileCSVLateLatin1(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("city,n\n")
	for b.Len() < 3*headBytes {
		b.WriteString("Berlin,1\n")
	}
	b.WriteString("K\xF6ln,2\n")
	ds, err := profileBytes(t, "late.csv", []byte(b.String()), Options{})
	require.NoError(t, err)
	require.Equal(t, "cp1252", ds.Encoding)
	require.Equal(t, TypeInteger, ds.Sheets[0].Columns[1].Type)
}

func TestSniffDelimiter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a,b,c\n1,2,3\n":                         ",",
		"a;b;c\n1;2;3\n":                         ";",
		"a\tb\n1\t2\n":                           "\t",
		"a|b|c\n1|2|3\n":                         "|",
		"name;price\nfoo;3,5\nbar;4,25\nbaz;1\n": ";",
		"\"x,y\";z\n\"1,2\";3\n":                 ";",
		"single\n1\n2\n":                         ",",
		"a,b\n1,2\n3,4\npartial;line;here;x;y":   ",",
	} {
		got := sniffDelimiter([]byte(in), false)
		require.Equal(t, want, string(got), "input %q", in)
	}
}

func TestProfileCSVLimits(t *testing.T) {
	t.Parallel()
	t.Run("columns", func(t *testing.T) {
		t.Parallel()
		header := strings.Repeat("c,", 20) + "c\n"
		ds, err := profileBytes(t, "wide.csv", []byte(header+strings.Repeat("1,", 20)+"1\n"), Options{MaxColumns: 5, SampleRows: 1})
		require.NoError(t, err)
		s := ds.Sheets[0]
		require.True(t, s.Truncated)
		require.Len(t, s.Columns, 5)
		require.Equal(t, []string{"c", "c.1", "c.2", "c.3", "c.4"}, []string{s.Columns[0].Name, s.Columns[1].Name, s.Columns[2].Name, s.Columns[3].Name, s.Columns[4].Name})
		require.Len(t, s.Samples[0], 5)
	})
	t.Run("cell", func(t *testing.T) {
		t.Parallel()
		huge := strings.Repeat("9", 100_000)
		ds, err := profileBytes(t, "cell.csv", []byte("n,m\n"+huge+",1\n2,2\n"), Options{MaxCellBytes: 64, SampleRows: 1})
		require.NoError(t, err)
		s := ds.Sheets[0]
		require.Equal(t, TypeText, s.Columns[0].Type, "a cell cut short cannot be proved a number")
		require.Equal(t, TypeInteger, s.Columns[1].Type)
		require.Equal(t, strings.Repeat("9", 64)+"…", s.Samples[0][0])
	})
	t.Run("unterminated quote", func(t *testing.T) {
		t.Parallel()
		// A quote that never closes swallows the rest of the file into one
		// cell; only MaxCellBytes of it is kept.
		data := "a,b\n1,\"" + strings.Repeat("x,y\n", 1<<19)
		ds, err := profileBytes(t, "quote.csv", []byte(data), Options{MaxCellBytes: 64, SampleRows: 1})
		require.NoError(t, err)
		s := ds.Sheets[0]
		require.EqualValues(t, 1, s.RowCount)
		require.Len(t, s.Samples[0][1], 64+len("…"))
	})
	t.Run("rows", func(t *testing.T) {
		t.Parallel()
		ds, err := profileBytes(t, "rows.csv", []byte("n\n1\n2\n3\n4\n"), Options{MaxRows: 2})
		require.NoError(t, err)
		require.EqualValues(t, 2, ds.Sheets[0].RowCount)
		require.True(t, ds.Sheets[0].Truncated)
		ds, err = profileBytes(t, "rows.csv", []byte("n\n1\n2\n\n"), Options{MaxRows: 2})
		require.NoError(t, err)
		require.EqualValues(t, 2, ds.Sheets[0].RowCount)
		require.False(t, ds.Sheets[0].Truncated, "exactly MaxRows rows is not truncated")
	})
	t.Run("no samples", func(t *testing.T) {
		t.Parallel()
		ds, err := profileBytes(t, "k0.csv", []byte("n\n1\n"), Options{SampleRows: 0})
		require.NoError(t, err)
		require.Empty(t, ds.Sheets[0].Samples)
	})
	t.Run("ragged", func(t *testing.T) {
		t.Parallel()
		ds, err := profileBytes(t, "ragged.csv", []byte("a,b\n1\n2,3,4\n"), Options{SampleRows: 2})
		require.NoError(t, err)
		s := ds.Sheets[0]
		require.Equal(t, "Unnamed: 2", s.Columns[2].Name)
		require.Equal(t, []Column{col("a", TypeInteger, 0), col("b", TypeInteger, 1), col("Unnamed: 2", TypeInteger, 1)}, s.Columns)
		require.Equal(t, [][]string{{"1", "", ""}, {"2", "3", "4"}}, s.Samples)
	})
}

func TestProfileCSVLineEndings(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"lf": "a,b\n1,x\n2,y\n", "crlf": "a,b\r\n1,x\r\n2,y\r\n", "cr": "a,b\r1,x\r2,y\r", "no final newline": "a,b\n1,x\n2,y",
	} {
		ds, err := profileBytes(t, "le.csv", []byte(data), Options{SampleRows: 2})
		require.NoError(t, err, name)
		s := ds.Sheets[0]
		require.EqualValues(t, 2, s.RowCount, name)
		require.Equal(t, [][]string{{"1", "x"}, {"2", "y"}}, s.Samples, name)
		require.Equal(t, TypeInteger, s.Columns[0].Type, name)
	}
}

func TestProfileCSVDecimalComma(t *testing.T) {
	t.Parallel()
	data := "item;price;qty;code;big\nTea;3,50;2;1,2;1.234,75\nCake;1234,75;1;x;2,5\nJam;2;;3;1\n"
	ds, err := profileBytes(t, "shop.csv", []byte(data), Options{})
	require.NoError(t, err)
	s := ds.Sheets[0]
	require.Equal(t, Column{Name: "price", Type: TypeDecimal, DecimalComma: true}, s.Columns[1])
	require.Equal(t, col("qty", TypeInteger, 1), s.Columns[2])
	require.Equal(t, col("code", TypeText, 0), s.Columns[3])
	require.Equal(t, col("big", TypeText, 0), s.Columns[4], "thousands separators are not taken for numbers")

	// With a comma delimiter a quoted "3,50" is text: pandas would not read it as a number.
	ds, err = profileBytes(t, "shop.csv", []byte("item,price\nTea,\"3,50\"\n"), Options{})
	require.NoError(t, err)
	require.Equal(t, col("price", TypeText, 0), ds.Sheets[0].Columns[1])

	for v, want := range map[string]bool{"3,5": true, "-0,25": true, "1.234.567,89": false, "12.34,5": false, "1234,5": true, "3,": false, ",5": false, "1,2,3": false, "3,5e2": false} {
		require.Equal(t, want, isCommaDecimal(v), v)
	}
}

func TestDateFormats(t *testing.T) {
	t.Parallel()
	for want, values := range map[string][]string{
		"%Y-%m-%d":               {"2024-01-31", "2023-12-01"},
		"%Y-%m-%d %H:%M:%S":      {"2024-01-31 10:00:00", "2024-02-01 23:59:59"},
		"%d/%m/%Y":               {"01/02/2024", "31/01/2024"},
		"%m/%d/%Y":               {"01/02/2024", "12/31/2024"},
		"%d.%m.%Y":               {"31.01.2024", "1.2.2024"},
		"%d-%b-%y":               {"5-Mar-24", "15-Apr-24"},
		"%Y-%m-%dT%H:%M:%S%z":    {"2024-01-31T10:00:00Z", "2024-01-31T10:00:00+01:00"},
		"%Y-%m-%dT%H:%M:%S.%f%z": {"2024-01-31T10:00:00.5Z", "2024-01-31T10:00:00.25+01:00"},
		"%Y-%m-%d %H:%M:%S.%f":   {"2024-01-31 10:00:00.123", "2024-01-31 11:00:00.5"},
		"":                       {"01/02/2024", "03/04/2024"}, // day or month first: unknown
	} {
		c := newColStats(canAll, 0)
		for _, v := range values {
			observe(&c, v, false)
		}
		require.Equal(t, TypeDate, c.columnType(), "%v", values)
		require.Equal(t, want, c.dateFormat(), "%v", values)
	}
	// Mixed forms are still dates, with no single format.
	c := newColStats(canAll, 0)
	for _, v := range []string{"2024-01-31", "31/01/2024", "2024-02-01"} {
		observe(&c, v, false)
	}
	require.Equal(t, TypeDate, c.columnType())
	require.Empty(t, c.dateFormat())
}

func TestProfileCSVBadInput(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		file string
		data []byte
		err  error
	}{
		"empty":      {"e.csv", nil, ErrEmpty},
		"blank":      {"e.csv", []byte("\n\n  \n"), ErrEmpty},
		"binary":     {"b.csv", []byte("a,b\n\x00\x01\x02"), ErrNotText},
		"zip as csv": {"x.csv", []byte("PK\x03\x04rest"), ErrNotText},
		"xls":        {"old.xls", []byte("whatever"), ErrUnsupportedFormat},
		"no ext bin": {"blob", []byte{0, 1, 2, 3}, ErrUnsupportedFormat},
	} {
		_, err := profileBytes(t, c.file, c.data, Options{})
		require.ErrorIs(t, err, c.err, name)
		require.Contains(t, err.Error(), c.file, "%s: the error names the file", name)
	}
}

func TestProfileFileAndCancel(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data.tsv")
	require.NoError(t, os.WriteFile(path, []byte("a\tb\n1\t2.5\n"), 0o600))
	ds, err := ProfileFile(context.Background(), path, Options{})
	require.NoError(t, err)
	require.Equal(t, "data.tsv", ds.Name)
	require.Equal(t, "\t", ds.Delimiter)
	require.Equal(t, TypeDecimal, ds.Sheets[0].Columns[1].Type)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ProfileFile(ctx, path, Options{})
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)

	_, err = ProfileFile(context.Background(), filepath.Join(t.TempDir(), "missing.csv"), Options{})
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]ColumnType{
		"42": TypeInteger, "-7": TypeInteger, "+3": TypeInteger, "007": TypeInteger,
		"3.14": TypeDecimal, ".5": TypeDecimal, "1e6": TypeDecimal, "-2.5E-3": TypeDecimal,
		"2024-01-31": TypeDate, "2024-01-31 13:45:00": TypeDate, "31/01/2024": TypeDate, "1/31/24": TypeDate,
		"2024-01-31T13:45:00Z": TypeDate, "15-Mar-2023": TypeDate, "Jan 2, 2024": TypeDate,
		"TRUE": TypeBoolean, "False": TypeBoolean, "no": TypeText, "tRUE": TypeText,
		"1,5": TypeText, "abc": TypeText, "1e": TypeText, "inf": TypeText, "NaNs": TypeText, "2024-13-45": TypeText,
		"$12": TypeText, "12 apples": TypeText, "-": TypeText, ".": TypeText,
	} {
		c := newColStats(canAll&^canDecimalComma, 0) // as in a comma-delimited file
		observe(&c, v, false)
		require.Equal(t, want, c.columnType(), "value %q", v)
	}
}
