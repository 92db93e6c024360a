package tabular

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// Encodings as Python's codecs name them, so generated code can pass them to
// pandas.read_csv(encoding=...).
const (
	encUTF8    = "utf-8"
	encUTF8BOM = "utf-8-sig"
	encUTF16   = "utf-16"
	encCP1252  = "cp1252"
	encLatin1  = "latin-1"
)

// errNotUTF8 stops a UTF-8 pass at the first invalid byte sequence, so the
// file is read again as cp1252.
var errNotUTF8 = errors.New("invalid UTF-8")

func profileCSV(ctx context.Context, name string, r io.ReaderAt, size int64, head []byte, opts Options) (*Dataset, error) {
	if isZip(head) {
		return nil, fmt.Errorf("%s: %w: it is a zip archive (an XLSX workbook named as CSV?)", name, ErrNotText)
	}
	if looksBinary(head) {
		return nil, fmt.Errorf("%s: %w: it contains NUL bytes", name, ErrNotText)
	}
	enc := encUTF8
	var skip int64
	switch {
	case bytes.HasPrefix(head, []byte("\xEF\xBB\xBF")):
		enc, skip = encUTF8BOM, 3
	case hasUTF16BOM(head):
		enc = encUTF16
	case !validUTF8Prefix(head, int64(len(head)) == size):
		enc = singleByteEncoding(head)
	}
	for {
		ds, err := csvPass(ctx, name, r, size, skip, enc, head, opts)
		if errors.Is(err, errNotUTF8) && enc == encUTF8 {
			enc = encCP1252 // the head was UTF-8 but a later part is not
			continue
		}
		return ds, err
	}
}

// csvPass reads the whole file once in the given encoding.
func csvPass(ctx context.Context, name string, r io.ReaderAt, size, skip int64, enc string, head []byte, opts Options) (*Dataset, error) {
	var src io.Reader = io.NewSectionReader(r, skip, size-skip)
	var c1 *c1Detector
	sniff := head[min(int(skip), len(head)):]
	switch enc {
	case encUTF8:
		src = &utf8Checker{r: src}
	case encCP1252:
		c1 = &c1Detector{r: src}
		src = charmap.Windows1252.NewDecoder().Reader(c1)
	case encLatin1:
		src = charmap.ISO8859_1.NewDecoder().Reader(src)
	case encUTF16:
		dec := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM)
		src = dec.NewDecoder().Reader(src)
		sniff, _ = io.ReadAll(io.LimitReader(dec.NewDecoder().Reader(bytes.NewReader(head)), headBytes))
	}
	if bytes.IndexByte(sniff, '\r') >= 0 && bytes.IndexByte(sniff, '\n') < 0 {
		// Old Mac line endings: a lone CR ends each line.
		src = crToLF{src}
		sniff = bytes.ReplaceAll(sniff, []byte{'\r'}, []byte{'\n'})
	}
	delim := sniffDelimiter(sniff, int64(len(head)) == size)
	tok := newCSVTokenizer(src, delim, opts.MaxColumns+1, opts.MaxCellBytes)
	b := newTableBuilder("", opts)
	b.commaDecimals = delim != ','
	b.dateFormats = true
	for rows := 0; ; rows++ {
		if rows&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%s: profiling stopped: %w", name, err)
			}
		}
		ok, err := tok.next()
		if err != nil {
			if errors.Is(err, errNotUTF8) {
				return nil, err
			}
			return nil, fmt.Errorf("%s: reading: %w", name, err)
		}
		if !ok || !b.addBytes(tok.fields[:tok.n], tok.over[:tok.n]) {
			break
		}
	}
	sheet, ok := b.finish()
	if !ok {
		return nil, fmt.Errorf("%s: %w: the file is empty", name, ErrEmpty)
	}
	if c1 != nil && c1.seen {
		enc = encLatin1
	}
	return &Dataset{
		Name: name, Format: FormatCSV, SizeBytes: size, Encoding: enc,
		Delimiter: string(delim), Sheets: []Sheet{sheet},
	}, nil
}

// crToLF turns every CR into LF.
type crToLF struct{ r io.Reader }

func (c crToLF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i := range p[:n] {
		if p[i] == '\r' {
			p[i] = '\n'
		}
	}
	return n, err
}

// validUTF8Prefix reports whether head is UTF-8, allowing a rune cut at its
// end when the file goes on.
func validUTF8Prefix(head []byte, whole bool) bool {
	if !whole {
		for i := len(head) - 1; i >= 0 && i >= len(head)-3; i-- {
			if utf8.RuneStart(head[i]) {
				if !utf8.FullRune(head[i:]) {
					head = head[:i]
				}
				break
			}
		}
	}
	return utf8.Valid(head)
}

// utf8Checker passes bytes through and fails with errNotUTF8 at the first
// invalid sequence, including one split across reads.
type utf8Checker struct {
	r     io.Reader
	carry []byte
}

func (u *utf8Checker) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	data := p[:n]
	for len(u.carry) > 0 && len(data) > 0 && !utf8.FullRune(u.carry) {
		u.carry = append(u.carry, data[0])
		data = data[1:]
	}
	if len(u.carry) > 0 && utf8.FullRune(u.carry) {
		if !utf8.Valid(u.carry) {
			return n, errNotUTF8
		}
		u.carry = u.carry[:0]
	}
	if len(u.carry) == 0 {
		for i := len(data) - 1; i >= 0 && i >= len(data)-3; i-- {
			if utf8.RuneStart(data[i]) {
				if !utf8.FullRune(data[i:]) {
					u.carry = append(u.carry, data[i:]...)
					data = data[:i]
				}
				break
			}
		}
	}
	if !utf8.Valid(data) {
		return n, errNotUTF8
	}
	if errors.Is(err, io.EOF) && len(u.carry) > 0 {
		return n, errNotUTF8
	}
	return n, err
}

// singleByteEncoding tells cp1252 from latin-1: bytes cp1252 leaves
// undefined only occur in latin-1 text.
func singleByteEncoding(head []byte) string {
	for _, b := range head {
		if isC1Undefined(b) {
			return encLatin1
		}
	}
	return encCP1252
}

func isC1Undefined(b byte) bool {
	return b == 0x81 || b == 0x8D || b == 0x8F || b == 0x90 || b == 0x9D
}

// c1Detector notes bytes that cp1252 leaves undefined, which mark a
// latin-1 file.
type c1Detector struct {
	r    io.Reader
	seen bool
}

func (c *c1Detector) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if !c.seen {
		for _, b := range p[:n] {
			if isC1Undefined(b) {
				c.seen = true
				break
			}
		}
	}
	return n, err
}

// delimiters are the candidates, in order of preference on a tie.
var delimiters = []byte{',', ';', '\t', '|'}

// sniffDelimiter picks the candidate whose count per line (outside quotes)
// is the most consistent over the first lines, then the most frequent.
func sniffDelimiter(head []byte, whole bool) byte {
	const maxLines = 100
	var lines [][4]int
	var cur [4]int
	inQuote, blank := false, true
	for _, c := range head {
		switch {
		case c == '"':
			inQuote = !inQuote
			blank = false
		case c == '\n' && !inQuote:
			if !blank {
				lines = append(lines, cur)
			}
			cur, blank = [4]int{}, true
		case !inQuote:
			if k := bytes.IndexByte(delimiters, c); k >= 0 {
				cur[k]++
			}
			if c != '\r' && c != ' ' {
				blank = false
			}
		}
		if len(lines) == maxLines {
			break
		}
	}
	if !blank && (whole || len(lines) == 0) {
		lines = append(lines, cur)
	}
	best, bestScore, bestMode := byte(','), -1.0, 0
	for k, d := range delimiters {
		freq := map[int]int{}
		mode, modeN := 0, 0
		for _, l := range lines {
			freq[l[k]]++
			if n := freq[l[k]]; n > modeN || (n == modeN && l[k] > mode) {
				mode, modeN = l[k], n
			}
		}
		if mode == 0 {
			continue
		}
		score := float64(modeN) / float64(len(lines))
		if score > bestScore || (score == bestScore && mode > bestMode) {
			best, bestScore, bestMode = d, score, mode
		}
	}
	return best
}

// csvTokenizer splits delimited text into records, RFC 4180 quotes
// included, keeping at most maxCols fields of at most maxCell bytes each so
// memory stays bounded whatever the input. Malformed quotes are read
// leniently, as pandas does.
type csvTokenizer struct {
	r       *bufio.Reader
	delim   byte
	maxCols int
	maxCell int
	fields  [][]byte
	over    []bool
	n       int // fields in the current record, at most maxCols
	field   int
	state   int
	rest    []byte
	eof     bool
}

const (
	stStart = iota
	stUnquoted
	stQuoted
	stQuoteInQuoted
)

func newCSVTokenizer(r io.Reader, delim byte, maxCols, maxCell int) *csvTokenizer {
	return &csvTokenizer{
		r: bufio.NewReaderSize(r, 64<<10), delim: delim, maxCols: maxCols, maxCell: maxCell,
		fields: make([][]byte, maxCols), over: make([]bool, maxCols),
	}
}

// next reads one record into fields[:n]; it returns false at the end.
func (t *csvTokenizer) next() (bool, error) {
	t.n = 0
	t.field = 0
	t.resetField()
	t.state = stStart
	started := false
	for {
		if len(t.rest) == 0 {
			if t.eof {
				if started {
					t.endField()
					return true, nil
				}
				return false, nil
			}
			chunk, err := t.r.ReadSlice('\n')
			switch {
			case err == nil, errors.Is(err, bufio.ErrBufferFull):
			case errors.Is(err, io.EOF):
				t.eof = true
			default:
				return false, err
			}
			t.rest = chunk
			if len(chunk) == 0 {
				continue
			}
		}
		started = true
		if t.scan() {
			return true, nil
		}
	}
}

// field is the index of the field being filled; fields past maxCols are
// counted but not kept.
func (t *csvTokenizer) resetField() {
	if t.field < t.maxCols {
		t.fields[t.field] = t.fields[t.field][:0]
		t.over[t.field] = false
	}
}

func (t *csvTokenizer) add(b []byte) {
	if t.field >= t.maxCols || len(b) == 0 {
		return
	}
	f := t.fields[t.field]
	if room := t.maxCell - len(f); len(b) > room {
		b = b[:max(room, 0)]
		t.over[t.field] = true
	}
	t.fields[t.field] = append(f, b...)
}

func (t *csvTokenizer) endField() {
	t.field++
	t.n = min(t.field, t.maxCols)
	t.resetField()
}

// scan consumes t.rest, a chunk ending at the first newline if it has one;
// it returns true when a record ends.
func (t *csvTokenizer) scan() bool {
	for len(t.rest) > 0 {
		switch t.state {
		case stStart:
			if t.rest[0] == '"' {
				t.state = stQuoted
				t.rest = t.rest[1:]
				continue
			}
			t.state = stUnquoted
		case stUnquoted:
			if i := bytes.IndexByte(t.rest, t.delim); i >= 0 {
				t.add(t.rest[:i])
				t.rest = t.rest[i+1:]
				t.endField()
				t.state = stStart
				continue
			}
			if n := len(t.rest); t.rest[n-1] == '\n' {
				data := t.rest[:n-1]
				if len(data) > 0 && data[len(data)-1] == '\r' {
					data = data[:len(data)-1]
				}
				t.add(data)
				t.rest = nil
				t.endField()
				return true
			}
			t.add(t.rest)
			t.rest = nil
		case stQuoted:
			i := bytes.IndexByte(t.rest, '"')
			if i < 0 {
				t.add(t.rest)
				t.rest = nil
				continue
			}
			t.add(t.rest[:i])
			t.rest = t.rest[i+1:]
			t.state = stQuoteInQuoted
		case stQuoteInQuoted:
			switch c := t.rest[0]; c {
			case '"':
				t.add(t.rest[:1])
				t.rest = t.rest[1:]
				t.state = stQuoted
			case t.delim:
				t.rest = t.rest[1:]
				t.endField()
				t.state = stStart
			case '\r':
				t.rest = t.rest[1:]
			case '\n':
				t.rest = t.rest[1:]
				t.endField()
				return true
			default:
				t.state = stUnquoted // a stray quote: read on as plain text
			}
		}
	}
	return false
}
