package tabular

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
)

// oleHeader starts an OLE compound file: an encrypted workbook or a legacy .xls.
var oleHeader = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// xlsxFile is an open workbook.
type xlsxFile = *excelize.File

// xlsxOpener opens a workbook from a path or a reader with the size limits
// that keep a hostile archive (a zip bomb) from exhausting memory or disk.
type xlsxOpener struct{ opts excelize.Options }

func (o xlsxOpener) file(path string) (xlsxFile, error) { return excelize.OpenFile(path, o.opts) }

func (o xlsxOpener) reader(r io.Reader) (xlsxFile, error) { return excelize.OpenReader(r, o.opts) }

func profileXLSX(ctx context.Context, name string, size int64, head []byte, opts Options,
	open func(xlsxOpener) (xlsxFile, error)) (ds *Dataset, err error) {
	if !isZip(head) {
		if bytes.HasPrefix(head, oleHeader) {
			return nil, fmt.Errorf("%s: %w: it is password-protected or a legacy .xls file; save it as a plain .xlsx", name, ErrCorrupt)
		}
		return nil, fmt.Errorf("%s: %w: not a zip archive, so not an XLSX workbook", name, ErrCorrupt)
	}
	// excelize is not written for hostile input; a panic inside it is a
	// corrupt file, never a crash of the service.
	defer func() {
		if r := recover(); r != nil {
			ds, err = nil, fmt.Errorf("%s: %w: the workbook reader failed on it (%v)", name, ErrCorrupt, r)
		}
	}()
	f, err := open(xlsxOpener{excelize.Options{
		UnzipSizeLimit:    opts.MaxUnzipBytes,
		UnzipXMLSizeLimit: opts.MaxXMLInMemory,
		TmpDir:            opts.TempDir,
	}})
	if err != nil {
		return nil, xlsxError(name, "", err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, fmt.Errorf("%s: %w: the workbook has no worksheets", name, ErrCorrupt)
	}
	if len(sheets) > opts.MaxSheets {
		return nil, fmt.Errorf("%s: %w: %d worksheets, at most %d allowed", name, ErrTooLarge, len(sheets), opts.MaxSheets)
	}
	ds = &Dataset{Name: name, Format: FormatXLSX, SizeBytes: size}
	props, err := f.GetWorkbookProps()
	if err != nil {
		return nil, xlsxError(name, "", err)
	}
	date1904 := props.Date1904 != nil && *props.Date1904
	for _, sheetName := range sheets {
		sheet, err := profileSheet(ctx, f, sheetName, date1904, opts)
		if err != nil {
			return nil, xlsxError(name, sheetName, err)
		}
		ds.Sheets = append(ds.Sheets, sheet)
	}
	return ds, nil
}

// probeRows is how many rows of a worksheet are also read as displayed.
const probeRows = 1000

// profileSheet reads a worksheet's raw cell values (what pandas.read_excel
// returns). Over the first probeRows rows a second iterator reads the same
// rows as formatted for display, the only streaming way to learn which
// columns hold numbers shown as dates or booleans; formatting every cell
// would cost most of the time on a large sheet, so later rows reuse what
// the probe learned.
func profileSheet(ctx context.Context, f xlsxFile, sheetName string, date1904 bool, opts Options) (sheet Sheet, err error) {
	raw, err := f.Rows(sheetName)
	if err != nil {
		return Sheet{}, err
	}
	defer closeRows(raw, &err)
	shown, err := f.Rows(sheetName)
	if err != nil {
		return Sheet{}, err
	}
	defer closeRows(shown, &err)
	b := newTableBuilder(sheetName, opts)
	b.keepBlank = true
	kinds := map[int]cellKind{}
	var cells []string
	for i := 0; raw.Next(); i++ {
		if i&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return Sheet{}, fmt.Errorf("profiling stopped: %w", err)
			}
		}
		rawCells, err := raw.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return Sheet{}, err
		}
		var shownCells []string
		if i < probeRows && shown.Next() {
			if shownCells, err = shown.Columns(); err != nil {
				return Sheet{}, err
			}
		}
		cells = cells[:0]
		for j, v := range rawCells {
			if j < len(shownCells) {
				if k := kindOf(v, shownCells[j]); k != kindPlain {
					kinds[j] = k
				}
			}
			cells = append(cells, cellValue(v, kinds[j], date1904))
		}
		if !b.addStrings(cells) {
			break
		}
	}
	if err := raw.Error(); err != nil {
		return Sheet{}, err
	}
	if err := shown.Error(); err != nil {
		return Sheet{}, err
	}
	sheet, _ = b.finish() // an empty worksheet has no columns and no rows
	return sheet, nil
}

// cellKind is what a column's numbers stand for, learned from how they are displayed.
type cellKind int

const (
	kindPlain cellKind = iota
	kindDate
	kindBoolean
)

// kindOf says what a raw value displayed as shown stands for.
func kindOf(raw, shown string) cellKind {
	switch {
	case raw == "" || raw == shown:
		return kindPlain
	case (raw == "1" || raw == "0") && (shown == "TRUE" || shown == "FALSE"):
		return kindBoolean
	case numberKind(raw) != 0 && shownAsDate(shown):
		return kindDate
	}
	return kindPlain
}

func closeRows(r *excelize.Rows, err *error) {
	if cerr := r.Close(); *err == nil && cerr != nil {
		*err = cerr
	}
}

// cellValue is a cell as pandas would see it: numbers raw, a number in a
// date column as an ISO date, a boolean as TRUE or FALSE, text as it is.
func cellValue(raw string, kind cellKind, date1904 bool) string {
	switch kind {
	case kindBoolean:
		switch raw {
		case "1":
			return "TRUE"
		case "0":
			return "FALSE"
		}
		return raw
	case kindDate:
		if numberKind(raw) == 0 {
			return raw
		}
	default:
		return raw
	}
	serial, err := strconv.ParseFloat(raw, 64)
	if err != nil || serial < 0 || serial > 2958465 { // 9999-12-31
		return raw
	}
	t, err := excelize.ExcelDateToTime(serial, date1904)
	if err != nil {
		return raw
	}
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02 15:04:05")
}

var monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// shownAsDate reports whether a number's display text looks like a date or a
// time rather than a number with a currency or thousands separators.
func shownAsDate(shown string) bool {
	if strings.ContainsAny(shown, ":/") {
		return true
	}
	lower := strings.ToLower(shown)
	for _, m := range monthNames {
		if strings.Contains(lower, m) {
			return true
		}
	}
	digitsAround := func(sep byte) bool {
		for i := 1; i+1 < len(shown); i++ {
			if shown[i] == sep && isDigit(shown[i-1]) && isDigit(shown[i+1]) {
				return true
			}
		}
		return false
	}
	return digitsAround('-') || strings.Count(shown, ".") == 2 && digitsAround('.')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// xlsxError wraps a workbook reader's error with the file, the sheet and the
// sentinel a caller can test for.
func xlsxError(name, sheet string, err error) error {
	where := name
	if sheet != "" {
		where = fmt.Sprintf("%s: sheet %q", name, sheet)
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", where, err)
	case strings.Contains(err.Error(), "unzip size exceeds"), errors.Is(err, excelize.ErrMaxRows):
		return fmt.Errorf("%s: %w: %v", where, ErrTooLarge, err)
	default:
		return fmt.Errorf("%s: %w: %v", where, ErrCorrupt, err)
	}
}
