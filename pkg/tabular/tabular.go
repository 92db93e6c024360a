// Package tabular profiles CSV and XLSX files (columns, inferred types, row
// counts, a few sample rows) in bounded time and memory, without loading them.
package tabular

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is a dataset's file format.
type Format int

// Formats understood by Profile.
const (
	FormatUnknown Format = iota
	FormatCSV
	FormatXLSX
)

// String names the format.
func (f Format) String() string {
	switch f {
	case FormatCSV:
		return "csv"
	case FormatXLSX:
		return "xlsx"
	default:
		return "unknown"
	}
}

// ColumnType is the type inferred for a column from all of its values.
type ColumnType int

// Column types, from most to least specific.
const (
	TypeEmpty ColumnType = iota
	TypeInteger
	TypeDecimal
	TypeDate
	TypeBoolean
	TypeText
)

// String names the type as the prompt shows it.
func (t ColumnType) String() string {
	switch t {
	case TypeInteger:
		return "integer"
	case TypeDecimal:
		return "decimal"
	case TypeDate:
		return "date"
	case TypeBoolean:
		return "boolean"
	case TypeText:
		return "text"
	default:
		return "empty"
	}
}

// Column describes one column of a table.
type Column struct {
	// Name is the header, made unique the way pandas does ("a", "a.1") and
	// "Unnamed: N" when blank.
	Name string
	// Type is inferred from every non-empty value read.
	Type ColumnType
	// EmptyCount counts rows whose cell is blank or a marker pandas reads as
	// missing (NA, N/A, null, NaN, None, ...).
	EmptyCount int64
	// DecimalComma is true for a decimal column written with a comma as the
	// decimal mark ("3,50"; pandas needs decimal=","). Only a CSV whose
	// delimiter is not a comma can have one.
	DecimalComma bool
	// DateFormat is the strftime format every value of a date column
	// matches, such as "%d/%m/%Y" (or "ISO8601"); empty when the values mix
	// forms or could be day-first or month-first alike.
	DateFormat string
}

// Sheet describes one table: a CSV file or one worksheet.
type Sheet struct {
	// Name is the worksheet's name; empty for CSV.
	Name string
	// Columns are the columns in order.
	Columns []Column
	// RowCount counts non-blank data rows, the header excluded.
	RowCount int64
	// Samples are the first data rows (at most Options.SampleRows), each as
	// wide as Columns, long values shortened.
	Samples [][]string
	// HeaderRow is the 1-based row of a worksheet's header, the first row
	// with a value; zero for CSV.
	HeaderRow int
	// Truncated is true when a limit stopped profiling early: RowCount and
	// the empty counts then cover only the rows read, and columns past
	// Options.MaxColumns are left out.
	Truncated bool
}

// Dataset is the profile of one file.
type Dataset struct {
	// Name is the file's name as the code will see it under /data/in.
	Name string
	// Format is CSV or XLSX.
	Format Format
	// SizeBytes is the file's size.
	SizeBytes int64
	// Encoding is a CSV's text encoding as Python names it: "utf-8",
	// "utf-8-sig" (with a byte-order mark), "utf-16", "cp1252" or "latin-1".
	Encoding string
	// Delimiter is a CSV's field delimiter: ",", ";", "\t" or "|".
	Delimiter string
	// Sheets are the tables: one for a CSV, one per worksheet.
	Sheets []Sheet
}

// Options bound what profiling reads and keeps. Zero fields take defaults.
type Options struct {
	// SampleRows is how many data rows to keep per table; 0 keeps none, for
	// tenants that send no rows to the model.
	SampleRows int
	// MaxColumns is the widest table profiled; wider ones are truncated.
	MaxColumns int
	// MaxCellBytes is how much of one cell is kept for inference; longer
	// cells count as text.
	MaxCellBytes int
	// MaxRows stops counting a table after this many rows (Truncated).
	MaxRows int64
	// MaxSheets is the most worksheets a workbook may have.
	MaxSheets int
	// MaxUnzipBytes caps a workbook's total uncompressed size (zip bombs).
	MaxUnzipBytes int64
	// MaxXMLInMemory is the largest worksheet or shared-string part held in
	// memory; larger parts are unpacked to TempDir.
	MaxXMLInMemory int64
	// MaxInMemoryXLSX is the largest workbook Profile accepts from an
	// io.ReaderAt (it must be read whole); ProfileFile has no such limit.
	MaxInMemoryXLSX int64
	// TempDir is where large worksheet parts are unpacked; default os.TempDir.
	TempDir string
}

// Defaults for Options.
const (
	DefaultSampleRows      = 5
	DefaultMaxColumns      = 500
	DefaultMaxCellBytes    = 4 << 10
	DefaultMaxRows         = 100_000_000
	DefaultMaxSheets       = 64
	DefaultMaxUnzipBytes   = 256 << 20
	DefaultMaxXMLInMemory  = 16 << 20
	DefaultMaxInMemoryXLSX = 128 << 20
	// sampleValueRunes is how long a sample value or header may be in the profile.
	sampleValueRunes = 120
)

// DefaultOptions returns the defaults with DefaultSampleRows samples.
func DefaultOptions() Options {
	return Options{SampleRows: DefaultSampleRows}.withDefaults()
}

func (o Options) withDefaults() Options {
	if o.SampleRows < 0 {
		o.SampleRows = 0
	}
	if o.MaxColumns <= 0 {
		o.MaxColumns = DefaultMaxColumns
	}
	if o.MaxCellBytes <= 0 {
		o.MaxCellBytes = DefaultMaxCellBytes
	}
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxSheets <= 0 {
		o.MaxSheets = DefaultMaxSheets
	}
	if o.MaxUnzipBytes <= 0 {
		o.MaxUnzipBytes = DefaultMaxUnzipBytes
	}
	if o.MaxXMLInMemory <= 0 {
		o.MaxXMLInMemory = DefaultMaxXMLInMemory
	}
	if o.MaxXMLInMemory > o.MaxUnzipBytes {
		o.MaxXMLInMemory = o.MaxUnzipBytes
	}
	if o.MaxInMemoryXLSX <= 0 {
		o.MaxInMemoryXLSX = DefaultMaxInMemoryXLSX
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	return o
}

// Errors returned by profiling, wrapped with the file name and the cause.
var (
	// ErrUnsupportedFormat is a file that is neither CSV nor XLSX.
	ErrUnsupportedFormat = errors.New("unsupported file format")
	// ErrNotText is a "CSV" holding binary data.
	ErrNotText = errors.New("not a text file")
	// ErrCorrupt is a workbook that cannot be read.
	ErrCorrupt = errors.New("corrupt or unreadable workbook")
	// ErrTooLarge is a file past a profiling limit.
	ErrTooLarge = errors.New("file exceeds a profiling limit")
	// ErrEmpty is a file with no header row.
	ErrEmpty = errors.New("no header row")
)

// DetectFormat names the format from the file name and, when the name says
// nothing, from the first bytes.
func DetectFormat(name string, head []byte) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv", ".tsv", ".txt", ".tab", ".psv":
		return FormatCSV, nil
	case ".xlsx", ".xlsm":
		return FormatXLSX, nil
	case ".xls":
		return FormatUnknown, fmt.Errorf("%s: %w: legacy .xls workbooks are not supported; save it as .xlsx", name, ErrUnsupportedFormat)
	}
	if isZip(head) {
		return FormatXLSX, nil
	}
	if len(head) > 0 && looksBinary(head) {
		return FormatUnknown, fmt.Errorf("%s: %w: want CSV or XLSX", name, ErrUnsupportedFormat)
	}
	return FormatCSV, nil
}

// Profile profiles the file of the given name and size read through r.
// A workbook is read whole into memory, up to Options.MaxInMemoryXLSX; use
// ProfileFile for larger ones.
func Profile(ctx context.Context, name string, r io.ReaderAt, size int64, opts Options) (*Dataset, error) {
	opts = opts.withDefaults()
	head, err := readHead(r, size, headBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: reading: %w", name, err)
	}
	format, err := DetectFormat(name, head)
	if err != nil {
		return nil, err
	}
	switch format {
	case FormatXLSX:
		if size > opts.MaxInMemoryXLSX {
			return nil, fmt.Errorf("%s: %w: workbook of %d bytes is over the in-memory limit of %d bytes", name, ErrTooLarge, size, opts.MaxInMemoryXLSX)
		}
		return profileXLSX(ctx, name, size, head, opts, func(o xlsxOpener) (xlsxFile, error) {
			return o.reader(io.NewSectionReader(r, 0, size))
		})
	default:
		return profileCSV(ctx, name, r, size, head, opts)
	}
}

// ProfileFile profiles the file at path; the dataset is named after its base name.
func ProfileFile(ctx context.Context, path string, opts Options) (*Dataset, error) {
	opts = opts.withDefaults()
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", name, ErrUnsupportedFormat)
	}
	size := st.Size()
	head, err := readHead(f, size, headBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: reading: %w", name, err)
	}
	format, err := DetectFormat(name, head)
	if err != nil {
		return nil, err
	}
	if format == FormatXLSX {
		return profileXLSX(ctx, name, size, head, opts, func(o xlsxOpener) (xlsxFile, error) {
			return o.file(path)
		})
	}
	return profileCSV(ctx, name, f, size, head, opts)
}

// headBytes is how much of a file is read up front to sniff its format,
// encoding and delimiter.
const headBytes = 64 << 10

func readHead(r io.ReaderAt, size int64, n int) ([]byte, error) {
	if size < int64(n) {
		n = int(max(size, 0))
	}
	buf := make([]byte, n)
	got, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:got], nil
}

func isZip(head []byte) bool {
	return len(head) >= 4 && string(head[:4]) == "PK\x03\x04"
}

// looksBinary is true for data with NUL bytes, which no CSV holds (UTF-16
// text is recognised by its byte-order mark before this is asked).
func looksBinary(head []byte) bool {
	if hasUTF16BOM(head) {
		return false
	}
	for _, b := range head {
		if b == 0 {
			return true
		}
	}
	return false
}

func hasUTF16BOM(head []byte) bool {
	return len(head) >= 2 && ((head[0] == 0xFF && head[1] == 0xFE) || (head[0] == 0xFE && head[1] == 0xFF))
}
