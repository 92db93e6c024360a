package tabular

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bits of what a column's values could all be.
const (
	canInteger uint8 = 1 << iota
	canDecimal
	canDate
	canBoolean
	canDecimalComma // a decimal written with a comma, as in "3,50" or "1.234,50"
	canAll          = canInteger | canDecimal | canDate | canBoolean | canDecimalComma
)

// colStats accumulates one column's values.
type colStats struct {
	mask     uint8
	nonEmpty int64
	empty    int64
	// layouts are the date layouts (bits over dateLayouts) every date
	// value so far parses with; mixedDates is set once no single one does.
	layouts    uint64
	mixedDates bool
}

// newColStats starts a column that could still be anything.
func newColStats(mask uint8, empty int64) colStats {
	return colStats{mask: mask, empty: empty, layouts: allLayouts}
}

// dateFormat is the strftime format of a date column whose values share
// one layout, or "" when they do not or day and month order is ambiguous.
func (c *colStats) dateFormat() string {
	if c.columnType() != TypeDate || c.mixedDates || c.layouts == 0 {
		return ""
	}
	format, order := "", byte(0)
	for i, l := range dateLayouts {
		if c.layouts&(1<<i) == 0 {
			continue
		}
		if order != 0 && l.order != 0 && l.order != order {
			return "" // "01/02/2024" fits both month-first and day-first
		}
		if l.order != 0 {
			order = l.order
		}
		if format == "" {
			format = l.strftime
		}
	}
	return format
}

// decimalComma reports a decimal column written with comma decimals.
func (c *colStats) decimalComma() bool {
	return c.nonEmpty > 0 && c.mask&(canInteger|canDecimal) == 0 && c.mask&canDecimalComma != 0
}

func (c *colStats) columnType() ColumnType {
	switch {
	case c.nonEmpty == 0:
		return TypeEmpty
	case c.mask&canInteger != 0:
		return TypeInteger
	case c.mask&(canDecimal|canDecimalComma) != 0:
		return TypeDecimal
	case c.mask&canDate != 0:
		return TypeDate
	case c.mask&canBoolean != 0:
		return TypeBoolean
	default:
		return TypeText
	}
}

// observe adds one value; overflow means the cell was longer than kept.
func observe[T ~string | ~[]byte](c *colStats, v T, overflow bool) {
	v = trimSpace(v)
	if len(v) == 0 || isMissing(v) {
		c.empty++
		return
	}
	c.nonEmpty++
	if overflow {
		c.mask = 0
		return
	}
	if c.mask == 0 {
		return
	}
	got := classify(v, c.mask)
	if got == 0 && c.mask&canDate != 0 {
		check := c.layouts
		if c.mixedDates {
			check = allLayouts
		}
		if fits := dateLayoutsOf(v, check); fits != 0 {
			got = canDate
			if !c.mixedDates {
				if c.layouts&fits == 0 {
					c.mixedDates = true
				} else {
					c.layouts &= fits
				}
			}
		} else if !c.mixedDates && dateLayoutsOf(v, allLayouts&^c.layouts) != 0 {
			// A date in another layout than the column's so far.
			got, c.mixedDates = canDate, true
		}
	}
	c.mask &= got
}

func trimSpace[T ~string | ~[]byte](v T) T {
	i, j := 0, len(v)
	for i < j && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n') {
		i++
	}
	for j > i && (v[j-1] == ' ' || v[j-1] == '\t' || v[j-1] == '\r' || v[j-1] == '\n') {
		j--
	}
	return v[i:j]
}

// isMissing reports the markers pandas reads as NaN by default.
func isMissing[T ~string | ~[]byte](v T) bool {
	if len(v) > 9 {
		return false
	}
	switch string(v) {
	case "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
		"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null":
		return true
	}
	return false
}

// classify returns which of the types in want v could be.
func classify[T ~string | ~[]byte](v T, want uint8) uint8 {
	var got uint8
	if want&(canInteger|canDecimal|canDecimalComma) != 0 {
		switch numberKind(v) {
		case 1:
			got |= canInteger | canDecimal | canDecimalComma
		case 2:
			got |= canDecimal
		default:
			if want&canDecimalComma != 0 && isCommaDecimal(v) {
				got |= canDecimalComma
			}
		}
	}
	if want&canBoolean != 0 && isBoolean(v) {
		got |= canBoolean
	}
	return got & want
}

// numberKind is 1 for an integer, 2 for a decimal, 0 otherwise. It accepts
// what pandas parses as a number: a sign, digits, one point, an exponent.
func numberKind[T ~string | ~[]byte](v T) int {
	i := 0
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		i++
	}
	digits, point, exp := 0, false, false
	for ; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !point && !exp:
			point = true
		case (c == 'e' || c == 'E') && digits > 0 && !exp:
			exp = true
			if i+1 < len(v) && (v[i+1] == '+' || v[i+1] == '-') {
				i++
			}
			if i+1 >= len(v) {
				return 0
			}
		default:
			return 0
		}
	}
	switch {
	case digits == 0:
		return 0
	case point || exp:
		return 2
	default:
		return 1
	}
}

// isCommaDecimal accepts "3,5" and "-0,25": a comma as the decimal mark.
// Thousands separators ("1.234,5") are not accepted: pandas reads such a
// column as numbers only with thousands="." too, which would misread a
// column of point decimals elsewhere in the file.
func isCommaDecimal[T ~string | ~[]byte](v T) bool {
	i := 0
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		i++
	}
	comma := -1
	for j := i; j < len(v); j++ {
		switch {
		case v[j] == ',' && comma < 0:
			comma = j
		case !isDigit(v[j]):
			return false
		}
	}
	return comma > i && comma < len(v)-1
}

// isBoolean accepts the spellings pandas reads as booleans by default:
// true/True/TRUE and false/False/FALSE ("yes" and "no" stay text there).
func isBoolean[T ~string | ~[]byte](v T) bool {
	switch string(v) {
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return true
	}
	return false
}

// isISODate is a fast path for the commonest form, YYYY-MM-DD, checked
// without parsing.
func isISODate[T ~string | ~[]byte](v T) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9} {
		if !isDigit(v[i]) {
			return false
		}
	}
	m := int(v[5]-'0')*10 + int(v[6]-'0')
	d := int(v[8]-'0')*10 + int(v[9]-'0')
	return m >= 1 && m <= 12 && d >= 1 && d <= 31
}

// dateLayout is a date form recognised: its Go layout, the strftime format
// pandas.to_datetime takes, and 'm' or 'd' when it puts the month or the
// day first in a way another layout reverses.
type dateLayout struct {
	layout, strftime string
	order            byte
}

// dateLayouts are the date and date-time forms recognised, ISO first, then
// the ones spreadsheets and exports commonly write. At most 64.
var dateLayouts = []dateLayout{
	{"2006-01-02", "%Y-%m-%d", 0},
	{"2006-01-02 15:04:05", "%Y-%m-%d %H:%M:%S", 0},
	{"2006-01-02T15:04:05", "%Y-%m-%dT%H:%M:%S", 0},
	{"2006-01-02 15:04", "%Y-%m-%d %H:%M", 0},
	{"2006-01-02T15:04", "%Y-%m-%dT%H:%M", 0},
	{"2006-01-02 15:04:05.999999999", "%Y-%m-%d %H:%M:%S.%f", 0},
	{"2006-01-02T15:04:05.999999999", "%Y-%m-%dT%H:%M:%S.%f", 0},
	{time.RFC3339, "%Y-%m-%dT%H:%M:%S%z", 0},
	{time.RFC3339Nano, "%Y-%m-%dT%H:%M:%S.%f%z", 0},
	{"2006/01/02", "%Y/%m/%d", 0},
	{"2006/1/2", "%Y/%m/%d", 0},
	{"1/2/2006", "%m/%d/%Y", 'm'},
	{"2/1/2006", "%d/%m/%Y", 'd'},
	{"1/2/2006 15:04", "%m/%d/%Y %H:%M", 'm'},
	{"2/1/2006 15:04", "%d/%m/%Y %H:%M", 'd'},
	{"1/2/2006 15:04:05", "%m/%d/%Y %H:%M:%S", 'm'},
	{"2/1/2006 15:04:05", "%d/%m/%Y %H:%M:%S", 'd'},
	{"1/2/06", "%m/%d/%y", 'm'},
	{"2/1/06", "%d/%m/%y", 'd'},
	{"1/2/06 15:04", "%m/%d/%y %H:%M", 'm'},
	{"2.1.2006", "%d.%m.%Y", 0},
	{"1-2-06", "%m-%d-%y", 0},
	{"2-Jan-06", "%d-%b-%y", 0},
	{"2-Jan-2006", "%d-%b-%Y", 0},
	{"02 Jan 2006", "%d %b %Y", 0},
	{"Jan 2, 2006", "%b %d, %Y", 0},
	{"January 2, 2006", "%B %d, %Y", 0},
}

var allLayouts = uint64(1)<<len(dateLayouts) - 1

// hasFraction reports fractional seconds, as in "10:00:00.5".
func hasFraction(s string) bool {
	for j := 0; j+4 < len(s); j++ {
		if s[j] == ':' && isDigit(s[j+1]) && isDigit(s[j+2]) && s[j+3] == '.' && isDigit(s[j+4]) {
			return true
		}
	}
	return false
}

// dateLayoutsOf returns which of the layouts in check parse v.
func dateLayoutsOf[T ~string | ~[]byte](v T, check uint64) uint64 {
	if len(v) < 6 || len(v) > 35 {
		return 0
	}
	if c := v[0]; !(c >= '0' && c <= '9') && !(c >= 'A' && c <= 'Z') {
		return 0
	}
	if isISODate(v) {
		return check & 1 // only "2006-01-02" parses a bare ISO date
	}
	s := string(v)
	frac := hasFraction(s)
	var fits uint64
	for i, l := range dateLayouts {
		if check&(1<<i) == 0 {
			continue
		}
		// Go accepts fractional seconds a layout does not show; strftime
		// does not, so a layout with seconds fits only values that agree
		// with its %f.
		if strings.Contains(l.layout, "05") && frac != strings.Contains(l.strftime, "%f") {
			continue
		}
		if _, err := time.Parse(l.layout, s); err == nil {
			fits |= 1 << i
		}
	}
	return fits
}

// tableBuilder turns rows into a Sheet: the first non-blank row is the
// header, the rest are data.
type tableBuilder struct {
	opts Options
	// commaDecimals allows "3,5" as a decimal: only where the comma is not
	// the delimiter (CSV with ";", tab or "|").
	commaDecimals bool
	// dateFormats reports the strftime format of date columns: in a CSV,
	// where dates stay text until parsed (a workbook's dates are typed).
	dateFormats bool
	// keepBlank counts blank rows between data rows, as pandas.read_excel
	// does (read_csv skips them); blank rows after the last data row never count.
	keepBlank    bool
	pendingBlank int64
	seen         int // rows offered, blank ones included
	sheet        Sheet
	cols         []colStats
	names        map[string]bool
	started      bool
	full         bool // MaxRows reached
}

func newTableBuilder(name string, opts Options) *tableBuilder {
	return &tableBuilder{opts: opts, sheet: Sheet{Name: name}, names: map[string]bool{}}
}

// addStrings adds a row of strings; it returns false once MaxRows is reached.
func (b *tableBuilder) addStrings(cells []string) bool {
	return addRow(b, cells, nil)
}

// addBytes adds a row of byte fields with per-field overflow marks.
func (b *tableBuilder) addBytes(fields [][]byte, overflow []bool) bool {
	return addRow(b, fields, overflow)
}

func addRow[T ~string | ~[]byte](b *tableBuilder, cells []T, overflow []bool) bool {
	if b.full {
		return false
	}
	b.seen++
	last := len(cells)
	for last > 0 && len(trimSpace(cells[last-1])) == 0 && (overflow == nil || !overflow[last-1]) {
		last--
	}
	if last == 0 {
		if b.keepBlank && b.started {
			b.pendingBlank++
		}
		return true // a blank row
	}
	if b.started || b.keepBlank {
		cells = cells[:last]
	} // else a CSV header: pandas makes a column of every field, blank ones too
	if len(cells) > b.opts.MaxColumns {
		cells = cells[:b.opts.MaxColumns]
		b.sheet.Truncated = true
	}
	if !b.started {
		b.started = true
		if b.keepBlank {
			b.sheet.HeaderRow = b.seen
		}
		for i, c := range cells {
			b.addColumn(i, shorten(string(trimSpace(c))), 0)
		}
		return true
	}
	for ; b.pendingBlank > 0; b.pendingBlank-- {
		if !b.addEmptyRow() {
			return false
		}
	}
	if b.atLimit() {
		return false
	}
	for i := len(b.cols); i < len(cells); i++ {
		// A row wider than the header: pandas names such columns "Unnamed: N"
		// and they were empty in every earlier row.
		b.addColumn(i, "", b.sheet.RowCount)
	}
	for i := range b.cols {
		if i < len(cells) {
			observe(&b.cols[i], cells[i], overflow != nil && overflow[i])
		} else {
			b.cols[i].empty++
		}
	}
	if len(b.sheet.Samples) < b.opts.SampleRows {
		row := make([]string, len(b.cols))
		for i := range cells {
			row[i] = shorten(string(cells[i]))
			if overflow != nil && overflow[i] && !strings.HasSuffix(row[i], "…") {
				row[i] += "…"
			}
		}
		b.sheet.Samples = append(b.sheet.Samples, row)
	}
	return b.countRow()
}

// addEmptyRow adds a data row with every cell empty.
func (b *tableBuilder) addEmptyRow() bool {
	if b.atLimit() {
		return false
	}
	for i := range b.cols {
		b.cols[i].empty++
	}
	if len(b.sheet.Samples) < b.opts.SampleRows {
		b.sheet.Samples = append(b.sheet.Samples, make([]string, len(b.cols)))
	}
	return b.countRow()
}

// atLimit reports, for a data row about to be added, that MaxRows rows
// have been counted already: the table is truncated there.
func (b *tableBuilder) atLimit() bool {
	if b.sheet.RowCount >= b.opts.MaxRows {
		b.full = true
		b.sheet.Truncated = true
	}
	return b.full
}

// countRow counts a data row.
func (b *tableBuilder) countRow() bool {
	b.sheet.RowCount++
	return true
}

func (b *tableBuilder) addColumn(i int, name string, empty int64) {
	if name == "" {
		name = "Unnamed: " + strconv.Itoa(i)
	}
	if b.names[name] {
		for n := 1; ; n++ {
			alt := name + "." + strconv.Itoa(n)
			if !b.names[alt] {
				name = alt
				break
			}
		}
	}
	b.names[name] = true
	mask := canAll
	if !b.commaDecimals {
		mask &^= canDecimalComma
	}
	b.cols = append(b.cols, newColStats(mask, empty))
	b.sheet.Columns = append(b.sheet.Columns, Column{Name: name})
	for j := range b.sheet.Samples {
		b.sheet.Samples[j] = append(b.sheet.Samples[j], "")
	}
}

// finish returns the sheet, or false when no header was found.
func (b *tableBuilder) finish() (Sheet, bool) {
	for i := range b.cols {
		b.sheet.Columns[i].Type = b.cols[i].columnType()
		b.sheet.Columns[i].EmptyCount = b.cols[i].empty
		b.sheet.Columns[i].DecimalComma = b.cols[i].decimalComma()
		if b.dateFormats {
			b.sheet.Columns[i].DateFormat = b.cols[i].dateFormat()
		}
	}
	return b.sheet, b.started
}

// shorten cuts s to sampleValueRunes runes, marking the cut with "…", and
// replaces invalid UTF-8.
func shorten(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if utf8.RuneCountInString(s) <= sampleValueRunes {
		return s
	}
	n := 0
	for i := range s {
		if n == sampleValueRunes {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
