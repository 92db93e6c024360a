package generator

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
)

// Answer is the model's structured answer.
type Answer struct {
	Code            string   `json:"code"`
	Explanation     string   `json:"explanation"`
	ExpectedOutputs []string `json:"expected_outputs"`
}

// fence matches a markdown code fence and its language tag.
var fence = regexp.MustCompile("(?s)```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)(?:\r?\n)?(?:```|$)")

// ParseAnswer decodes the model's answer. Well-formed JSON is taken as it
// is; otherwise the repair layer fixes what models commonly get wrong
// (markdown fences, prose around the object, trailing commas, single quotes,
// unquoted keys, Python literals, raw newlines in strings, an object cut
// off by the token limit, a bare ```python block) and reports repaired.
func ParseAnswer(content string) (Answer, bool, error) {
	if a, err := decodeAnswer(content); err == nil {
		return a, false, nil
	}
	text := strings.TrimSpace(content)
	if text == "" {
		return Answer{}, false, errors.New("the answer is empty")
	}
	var candidates []string
	var bareCode string
	for _, m := range fence.FindAllStringSubmatch(text, -1) {
		lang, body := strings.ToLower(m[1]), m[2]
		switch {
		case strings.HasPrefix(strings.TrimSpace(body), "{"):
			candidates = append(candidates, body)
		case (lang == "python" || lang == "py" || lang == "") && bareCode == "":
			bareCode = body
		}
	}
	if i := strings.IndexByte(text, '{'); i >= 0 {
		obj := text[i:]
		if j := strings.LastIndexByte(obj, '}'); j >= 0 && !strings.Contains(obj[j:], `"`) {
			candidates = append(candidates, obj[:j+1], obj)
		} else {
			candidates = append(candidates, obj)
		}
	}
	var firstErr error
	for _, c := range candidates {
		a, err := decodeAnswer(c)
		if err != nil {
			a, err = decodeAnswer(repairJSON(c))
		}
		if err == nil {
			return a, true, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if strings.TrimSpace(bareCode) != "" {
		return Answer{Code: strings.TrimRight(bareCode, "\n") + "\n"}, true, nil
	}
	if firstErr == nil {
		firstErr = errors.New("no JSON object in the answer")
	}
	return Answer{}, false, firstErr
}

func decodeAnswer(s string) (Answer, error) {
	var a Answer
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &a); err != nil {
		return Answer{}, err
	}
	if strings.TrimSpace(a.Code) == "" {
		return Answer{}, errors.New(`the answer has no "code"`)
	}
	return a, nil
}

// repairJSON rewrites JSON-like text into JSON: single-quoted strings and
// unquoted keys are quoted, trailing commas and comments dropped, Python's
// True/False/None translated, raw control characters in strings escaped,
// and whatever a truncated answer left open is closed.
func repairJSON(s string) string {
	var out jsonBuf
	var stack []byte
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			n := writeString(&out, s[i:])
			i += n
			continue
		case c == '{' || c == '[':
			stack = append(stack, c)
			out.WriteByte(c)
		case c == '}' || c == ']':
			trimTrailingComma(&out)
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			out.WriteByte(c)
		case c == '/' && i+1 < len(s) && s[i+1] == '/':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				i = len(s)
			} else {
				i += end + 4
			}
			continue
		case isWordStart(c):
			j := i
			for j < len(s) && isWordPart(s[j]) {
				j++
			}
			word := s[i:j]
			switch word {
			case "true", "false", "null":
				out.WriteString(word)
			case "True":
				out.WriteString("true")
			case "False":
				out.WriteString("false")
			case "None":
				out.WriteString("null")
			default:
				b, _ := json.Marshal(word)
				out.Write(b)
			}
			i = j
			continue
		default:
			out.WriteByte(c)
		}
		i++
	}
	// Close what a truncated answer left open.
	out.trimSpace()
	if len(out) > 0 && out[len(out)-1] == ':' {
		out.WriteString("null")
	}
	for k := len(stack) - 1; k >= 0; k-- {
		trimTrailingComma(&out)
		if stack[k] == '{' {
			out.WriteByte('}')
		} else {
			out.WriteByte(']')
		}
	}
	return string(out)
}

// jsonBuf is the repaired text being built.
type jsonBuf []byte

func (b *jsonBuf) WriteByte(c byte) error { *b = append(*b, c); return nil }
func (b *jsonBuf) WriteString(s string)   { *b = append(*b, s...) }
func (b *jsonBuf) Write(p []byte)         { *b = append(*b, p...) }
func (b *jsonBuf) trimSpace() {
	for len(*b) > 0 && strings.IndexByte(" \t\r\n", (*b)[len(*b)-1]) >= 0 {
		*b = (*b)[:len(*b)-1]
	}
}

// writeString copies the quoted string at the start of s as a JSON string
// and returns how many bytes of s it consumed. An unterminated string runs
// to the end of s and is closed.
func writeString(out *jsonBuf, s string) int {
	quote := s[0]
	out.WriteByte('"')
	i := 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == quote:
			out.WriteByte('"')
			return i + 1
		case c == '\\' && i+1 < len(s):
			next := s[i+1]
			if next == '\'' {
				out.WriteByte('\'')
			} else if strings.IndexByte(`"\/bfnrtu`, next) >= 0 {
				out.WriteByte('\\')
				out.WriteByte(next)
			} else {
				out.WriteString(`\\`)
				out.WriteByte(next)
			}
			i += 2
			continue
		case c == '"':
			out.WriteString(`\"`)
		case c == '\n':
			out.WriteString(`\n`)
		case c == '\r':
			out.WriteString(`\r`)
		case c == '\t':
			out.WriteString(`\t`)
		case c < 0x20:
			out.WriteString(`\u00`)
			out.WriteByte("0123456789abcdef"[c>>4])
			out.WriteByte("0123456789abcdef"[c&15])
		default:
			out.WriteByte(c)
		}
		i++
	}
	if i > len(s) { // a lone trailing backslash
		i = len(s)
	}
	out.WriteByte('"')
	return i
}

func trimTrailingComma(out *jsonBuf) {
	end := len(*out)
	for end > 0 && strings.IndexByte(" \t\r\n", (*out)[end-1]) >= 0 {
		end--
	}
	if end > 0 && (*out)[end-1] == ',' {
		*out = (*out)[:end-1]
	}
}

func isWordStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isWordPart(c byte) bool { return isWordStart(c) || (c >= '0' && c <= '9') }
