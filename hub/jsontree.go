package hub

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/comfypod/comfypod/internal/truncate"
)

// This file holds the JSON reader the linter runs on hub.json, tests.json and
// the package's other JSON files. encoding/json stops at the first error and
// forgets where values were; the linter needs every value's position and path,
// and needs to keep going past the mistakes people make in hand-written files
// (trailing and missing commas, comments, stray invisible characters) so that
// one typo does not hide every other finding.

// kind is the JSON type of a value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

func (k kind) String() string {
	switch k {
	case kNull:
		return "null"
	case kBool:
		return "a boolean"
	case kNumber:
		return "a number"
	case kString:
		return "a string"
	case kArray:
		return "an array"
	case kObject:
		return "an object"
	}
	return "a value"
}

// node is one JSON value with its position in the parsed text.
type node struct {
	kind       kind
	start, end int    // byte offsets of the value in jsonDoc.text
	path       string // JSON path from the root: config.env[3].key
	// str is the decoded text of a string, the literal text of a number, or
	// "true"/"false" for a boolean.
	str     string
	members []*member // object members in document order
	elems   []*node   // array elements
}

// member is one key/value pair of an object.
type member struct {
	key              string
	keyStart, keyEnd int
	value            *node
}

// get returns the value of key in an object (the last one if the key is
// repeated, as JSON.parse and encoding/json do), or nil.
func (n *node) get(key string) *node {
	if n == nil || n.kind != kObject {
		return nil
	}
	for i := len(n.members) - 1; i >= 0; i-- {
		if n.members[i].key == key {
			return n.members[i].value
		}
	}
	return nil
}

// member returns the member called key (the last one if repeated), or nil.
func (n *node) member(key string) *member {
	if n == nil || n.kind != kObject {
		return nil
	}
	for i := len(n.members) - 1; i >= 0; i-- {
		if n.members[i].key == key {
			return n.members[i]
		}
	}
	return nil
}

// is reports whether n is present and of kind k.
func (n *node) is(k kind) bool { return n != nil && n.kind == k }

// text returns a string value's text, or "" for anything else.
func (n *node) text() string {
	if n.is(kString) {
		return n.str
	}
	return ""
}

// integer returns the value of a number without a fraction or exponent part
// that fits an int64.
func (n *node) integer() (int64, bool) {
	if !n.is(kNumber) {
		return 0, false
	}
	v, err := strconv.ParseInt(n.str, 10, 64)
	if err == nil {
		return v, true
	}
	// 1.0 and 1e3 are integers written oddly; JSON has one number type.
	f, err := strconv.ParseFloat(n.str, 64)
	if err != nil || f != float64(int64(f)) || f > 1<<53 || f < -(1<<53) {
		return 0, false
	}
	return int64(f), true
}

// childPath returns the path of member key under path.
func childPath(path, key string) string {
	if isIdent(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// syntaxProblem is a place where the text is not strict JSON.
type syntaxProblem struct {
	off   int    // byte offset in jsonDoc.text
	msg   string // what is wrong and how to fix it
	fatal bool   // parsing stopped here
}

// dupKey is a key that appears twice in one object.
type dupKey struct {
	off  int
	key  string
	path string
	prev int // offset of the earlier key
}

// jsonDoc is a parsed JSON file.
type jsonDoc struct {
	file string // slash-separated path relative to the package folder
	src  []byte // the file's bytes
	// text is what was parsed: src, or src with literal \n escapes undone.
	text []byte
	// offmap maps an offset in text to one in src when they differ.
	offmap []int

	root     *node
	problems []syntaxProblem
	dups     []dupKey
	bom      bool

	lines []int // offsets in src where lines start
}

// fatal reports whether parsing stopped before the end, so the content cannot
// be trusted.
func (d *jsonDoc) fatal() bool {
	for _, p := range d.problems {
		if p.fatal {
			return true
		}
	}
	return d.root == nil
}

// srcOffset maps an offset in text to one in src.
func (d *jsonDoc) srcOffset(off int) int {
	if d.offmap == nil {
		return off
	}
	if off < 0 {
		return 0
	}
	if off >= len(d.offmap) {
		return len(d.src)
	}
	return d.offmap[off]
}

// position returns the 1-based line and column (in characters) of an offset
// in text.
func (d *jsonDoc) position(off int) (line, col int) {
	return lineCol(d.src, &d.lines, d.srcOffset(off))
}

// lineCol returns the 1-based line and column, in characters, of off in src.
// lines caches where lines start.
func lineCol(src []byte, lines *[]int, off int) (line, col int) {
	if *lines == nil {
		ls := []int{0}
		for i, c := range src {
			if c == '\n' {
				ls = append(ls, i+1)
			}
		}
		*lines = ls
	}
	off = max(0, min(off, len(src)))
	ls := *lines
	lo, hi := 0, len(ls)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if ls[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	start := ls[lo]
	seg := src[start:off]
	if lo == 0 {
		seg = bytes.TrimPrefix(seg, []byte(bom))
	}
	return lo + 1, utf8.RuneCount(seg) + 1
}

// bom is the UTF-8 byte order mark.
const bom = "\xef\xbb\xbf"

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 500

// maxProblems bounds the syntax problems kept per file.
const maxProblems = 50

// parseJSON parses src leniently: it records every deviation from strict JSON
// and recovers where the intent is clear. The result's root is nil when the
// text could not be understood at all.
func parseJSON(file string, src []byte) *jsonDoc {
	d := &jsonDoc{file: file, src: src, text: src}
	text := src
	if bytes.HasPrefix(text, []byte(bom)) {
		d.bom = true
	}
	p := &parser{text: text}
	if d.bom {
		p.pos = len(bom)
	}
	d.root = p.document()
	d.problems, d.dups = p.problems, p.dups

	if d.fatal() {
		if alt := retryLiteralEscapes(file, src); alt != nil {
			return alt
		}
		if alt := retryAfterPreamble(file, src, d); alt != nil {
			return alt
		}
	}
	return d
}

// retryLiteralEscapes handles a file that holds the contents of a JSON string
// pasted raw: `{\n  \"tests\": …` on one line. It parses the text with the
// escapes undone and, if that works, reports one problem at the first escape.
func retryLiteralEscapes(file string, src []byte) *jsonDoc {
	first := bytes.Index(src, []byte(`\n`))
	if first < 0 {
		return nil
	}
	// Real line breaks in such files are rare; a normal file with a broken
	// string escape has many.
	if bytes.Count(src, []byte{'\n'}) > bytes.Count(src, []byte(`\n`)) {
		return nil
	}
	text := make([]byte, 0, len(src))
	offmap := make([]int, 0, len(src)+1)
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\\' && i+1 < len(src) {
			if out, ok := literalEscape(src[i+1]); ok {
				text = append(text, out)
				offmap = append(offmap, i)
				i++
				continue
			}
		}
		text = append(text, c)
		offmap = append(offmap, i)
	}
	offmap = append(offmap, len(src))
	p := &parser{text: text}
	root := p.document()
	alt := &jsonDoc{file: file, src: src, text: text, offmap: offmap, root: root, dups: p.dups}
	if alt.root == nil || hasFatal(p.problems) {
		return nil
	}
	alt.problems = append([]syntaxProblem{{
		off: indexMapped(offmap, first),
		msg: `the file holds literal \n escape sequences instead of line breaks (the text of a JSON string pasted raw); ` +
			`replace each \n with a line break and each \" with "`,
	}}, p.problems...)
	// The file cannot be trusted as JSON even though its intent is clear.
	alt.problems[0].fatal = false
	return alt
}

// literalEscape undoes one escape of a file that holds a JSON string's
// contents pasted raw: one level, as a JSON decoder would.
func literalEscape(c byte) (byte, bool) {
	switch c {
	case 'n':
		return '\n', true
	case 't':
		return '\t', true
	case 'r':
		return '\r', true
	case '"', '\\', '/':
		return c, true
	}
	return 0, false
}

// indexMapped returns the text offset whose src offset is off.
func indexMapped(offmap []int, off int) int {
	for i, o := range offmap {
		if o >= off {
			return i
		}
	}
	return len(offmap) - 1
}

func hasFatal(ps []syntaxProblem) bool {
	for _, p := range ps {
		if p.fatal {
			return true
		}
	}
	return false
}

// retryAfterPreamble handles a line of stray text before the JSON (a URL
// pasted above it, a shell prompt): if the JSON starts on a later line and
// parses from there, the preamble is one problem and the rest is linted.
func retryAfterPreamble(file string, src []byte, failed *jsonDoc) *jsonDoc {
	if len(failed.problems) == 0 {
		return nil
	}
	start := 0
	if failed.bom {
		start = len(bom)
	}
	// Only when the first problem is at the very first token.
	first := skipWS(src, start)
	if failed.problems[0].off != first || first >= len(src) || src[first] == '{' || src[first] == '[' {
		return nil
	}
	nl := bytes.IndexByte(src[first:], '\n')
	if nl < 0 {
		return nil
	}
	at := skipWS(src, first+nl+1)
	if at >= len(src) || src[at] != '{' && src[at] != '[' {
		return nil
	}
	p := &parser{text: src, pos: at}
	root := p.document()
	if root == nil || hasFatal(p.problems) {
		return nil
	}
	line := strings.TrimSpace(string(src[first : first+nl]))
	d := &jsonDoc{file: file, src: src, text: src, root: root, dups: p.dups, bom: failed.bom}
	d.problems = append([]syntaxProblem{{off: first,
		msg: fmt.Sprintf("unexpected text %s before the JSON value; delete that line", quoteShort(line, 50))}}, p.problems...)
	return d
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// parser is a recursive-descent JSON parser that records problems.
type parser struct {
	text     []byte
	pos      int
	depth    int
	problems []syntaxProblem
	dups     []dupKey
	stopped  bool
}

// errStop unwinds the parser after a fatal problem.
type errStop struct{}

func (p *parser) problem(off int, format string, args ...any) {
	if len(p.problems) < maxProblems {
		p.problems = append(p.problems, syntaxProblem{off: off, msg: fmt.Sprintf(format, args...)})
	}
}

func (p *parser) fail(off int, format string, args ...any) {
	p.problems = append(p.problems, syntaxProblem{off: off, msg: fmt.Sprintf(format, args...), fatal: true})
	panic(errStop{})
}

// document parses the whole text. It returns nil when nothing usable was
// found.
func (p *parser) document() (root *node) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(errStop); !ok {
				panic(r)
			}
			root = nil
		}
	}()
	p.space()
	if p.pos >= len(p.text) {
		if len(bytes.TrimSpace(p.text)) == 0 {
			p.fail(p.pos, "the file is empty; it must hold a JSON object")
		}
		p.fail(p.pos, "the file holds only comments; it must hold a JSON object")
	}
	if c := p.text[p.pos]; c != '{' && c != '[' {
		if guess := guessLanguage(p.text[p.pos:]); guess != "" {
			p.fail(p.pos, "this is not JSON: it looks like %s; the file must hold a JSON object", guess)
		}
	}
	root = p.value("")
	p.space()
	if p.pos < len(p.text) {
		p.problem(p.pos, "unexpected text after the end of the JSON value (%s); delete it", quoteShort(firstLine(p.text[p.pos:]), 40))
	}
	return root
}

// guessLanguage names what a file that is not JSON looks like.
func guessLanguage(b []byte) string {
	line := firstLine(b)
	for _, prefix := range []string{"import ", "from ", "def ", "class ", "#!", "async def "} {
		if strings.HasPrefix(line, prefix) {
			return "Python source (" + quoteShort(line, 40) + ")"
		}
	}
	switch {
	case strings.HasPrefix(line, "<"):
		return "HTML or XML (" + quoteShort(line, 40) + ")"
	case strings.HasPrefix(line, "---") || strings.HasPrefix(line, "#"):
		return "YAML or a shell script (" + quoteShort(line, 40) + ")"
	case strings.HasPrefix(line, "FROM ") || strings.HasPrefix(line, "ARG "):
		return "a Dockerfile (" + quoteShort(line, 40) + ")"
	}
	return ""
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// quoteShort quotes s, cut to n characters.
func quoteShort(s string, n int) string {
	return "`" + truncate.Runes(s, n) + "`"
}

// invisibleName names the characters people paste by accident that JSON does
// not allow between tokens.
func invisibleName(r rune) (string, bool) {
	switch r {
	case 0x00a0:
		return "no-break space (U+00A0)", true
	case 0x200b:
		return "zero-width space (U+200B)", true
	case 0x200c:
		return "zero-width non-joiner (U+200C)", true
	case 0x200d:
		return "zero-width joiner (U+200D)", true
	case 0x2060:
		return "word joiner (U+2060)", true
	case 0xfeff:
		return "byte order mark (U+FEFF)", true
	case 0x3000:
		return "ideographic space (U+3000)", true
	}
	return "", false
}

// space skips whitespace, recording comments and invisible characters.
func (p *parser) space() {
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == '/' && p.pos+1 < len(p.text) && p.text[p.pos+1] == '/':
			p.problem(p.pos, "comments are not allowed in JSON; delete this // comment")
			for p.pos < len(p.text) && p.text[p.pos] != '\n' {
				p.pos++
			}
		case c == '/' && p.pos+1 < len(p.text) && p.text[p.pos+1] == '*':
			start := p.pos
			end := bytes.Index(p.text[p.pos+2:], []byte("*/"))
			if end < 0 {
				p.fail(start, "a /* comment is never closed; JSON has no comments, delete it")
			}
			p.problem(start, "comments are not allowed in JSON; delete this /* */ comment")
			p.pos += 2 + end + 2
		case c >= 0x80:
			r, size := utf8.DecodeRune(p.text[p.pos:])
			name, ok := invisibleName(r)
			if !ok {
				return
			}
			p.problem(p.pos, "invisible character %s between JSON tokens; delete it", name)
			p.pos += size
		default:
			return
		}
	}
}

// startsValue reports whether c can begin a JSON value.
func startsValue(c byte) bool {
	return c == '{' || c == '[' || c == '"' || c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n'
}

func (p *parser) value(path string) *node {
	if p.pos >= len(p.text) {
		p.fail(p.pos, "the file ends where a value was expected; it is cut short or a bracket is missing")
	}
	switch c := p.text[p.pos]; {
	case c == '{':
		return p.object(path)
	case c == '[':
		return p.array(path)
	case c == '"':
		start := p.pos
		s := p.string()
		return &node{kind: kString, start: start, end: p.pos, path: path, str: s}
	case c == '-' || c >= '0' && c <= '9':
		return p.number(path)
	case c == '\'':
		p.fail(p.pos, "single-quoted string; JSON strings use double quotes")
	case c == '}' || c == ']':
		p.fail(p.pos, "unexpected %q where a value was expected", c)
	case c == ',':
		p.fail(p.pos, "unexpected comma where a value was expected; delete it")
	}
	start := p.pos
	word := p.word()
	switch word {
	case "true", "false":
		return &node{kind: kBool, start: start, end: p.pos, path: path, str: word}
	case "null":
		return &node{kind: kNull, start: start, end: p.pos, path: path}
	case "True", "False", "None":
		p.fail(start, "%s is Python, not JSON; write %s", word, pythonLiteral(word))
	case "NaN", "Infinity", "undefined":
		p.fail(start, "%s is not a JSON value; use a number, a string or null", word)
	case "":
		r, _ := utf8.DecodeRune(p.text[p.pos:])
		if name, ok := invisibleName(r); ok {
			p.fail(start, "invisible character %s where a value was expected; delete it", name)
		}
		p.fail(start, "unexpected character %s where a value was expected", quoteRune(r))
	}
	p.fail(start, "unexpected word %s where a value was expected; strings need double quotes", quoteShort(word, 30))
	return nil
}

func quoteRune(r rune) string {
	if r == utf8.RuneError {
		return "(invalid UTF-8 byte)"
	}
	return strconv.QuoteRune(r)
}

// word consumes an identifier-like run of characters.
func (p *parser) word() string {
	start := p.pos
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return string(p.text[start:p.pos])
}

func (p *parser) enter(off int) {
	p.depth++
	if p.depth > maxDepth {
		p.fail(off, "values are nested more than %d deep", maxDepth)
	}
}

func (p *parser) object(path string) *node {
	n := &node{kind: kObject, start: p.pos, path: path}
	p.enter(p.pos)
	defer func() { p.depth-- }()
	open := p.pos
	p.pos++ // {
	seen := map[string]int{}
	p.space()
	if p.pos < len(p.text) && p.text[p.pos] == '}' {
		p.pos++
		n.end = p.pos
		return n
	}
	for {
		p.space()
		if p.pos >= len(p.text) {
			p.failUnclosed(open, '{')
		}
		c := p.text[p.pos]
		if c != '"' {
			switch {
			case c == '\'':
				p.fail(p.pos, "single-quoted key; JSON keys use double quotes")
			case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
				p.fail(p.pos, "key %s needs double quotes", quoteShort(p.peekWord(), 30))
			case c == '\\':
				p.fail(p.pos, `unexpected backslash; a literal \n or \" in a JSON file is not a line break or a quote`)
			default:
				p.fail(p.pos, "expected a key in double quotes, found %s", quoteRune(p.peekRune()))
			}
		}
		keyStart := p.pos
		key := p.string()
		keyEnd := p.pos
		if prev, ok := seen[key]; ok {
			p.dups = append(p.dups, dupKey{off: keyStart, key: key, path: childPath(path, key), prev: prev})
		}
		seen[key] = keyStart
		p.space()
		if p.pos >= len(p.text) || p.text[p.pos] != ':' {
			if p.pos < len(p.text) && p.text[p.pos] == '=' {
				p.fail(p.pos, "use ':' between a key and its value, not '='")
			}
			p.fail(p.pos, "expected ':' after the key %s", quoteShort(key, 30))
		}
		p.pos++
		p.space()
		v := p.value(childPath(path, key))
		n.members = append(n.members, &member{key: key, keyStart: keyStart, keyEnd: keyEnd, value: v})
		p.space()
		if p.pos >= len(p.text) {
			p.failUnclosed(open, '{')
		}
		switch c := p.text[p.pos]; c {
		case ',':
			comma := p.pos
			p.pos++
			p.space()
			if p.pos < len(p.text) && p.text[p.pos] == '}' {
				p.problem(comma, "trailing comma after the last member of an object; delete it")
				p.pos++
				n.end = p.pos
				return n
			}
		case '}':
			p.pos++
			n.end = p.pos
			return n
		case '"':
			p.problem(v.end, "missing comma after the value of %s, before the key that follows; add ','", quoteShort(key, 30))
		case ']':
			p.fail(p.pos, "']' closes an array, but the object opened at %s is still open; use '}'", p.where(open))
		default:
			p.fail(p.pos, "expected ',' or '}' after the value of %s, found %s", quoteShort(key, 30), quoteRune(p.peekRune()))
		}
	}
}

func (p *parser) array(path string) *node {
	n := &node{kind: kArray, start: p.pos, path: path}
	p.enter(p.pos)
	defer func() { p.depth-- }()
	open := p.pos
	p.pos++ // [
	p.space()
	if p.pos < len(p.text) && p.text[p.pos] == ']' {
		p.pos++
		n.end = p.pos
		return n
	}
	for {
		p.space()
		v := p.value(indexPath(path, len(n.elems)))
		n.elems = append(n.elems, v)
		p.space()
		if p.pos >= len(p.text) {
			p.failUnclosed(open, '[')
		}
		switch c := p.text[p.pos]; {
		case c == ',':
			comma := p.pos
			p.pos++
			p.space()
			if p.pos < len(p.text) && p.text[p.pos] == ']' {
				p.problem(comma, "trailing comma after the last element of an array; delete it")
				p.pos++
				n.end = p.pos
				return n
			}
		case c == ']':
			p.pos++
			n.end = p.pos
			return n
		case c == '}':
			p.fail(p.pos, "'}' closes an object, but the array opened at %s is still open; use ']'", p.where(open))
		case startsValue(c):
			p.problem(v.end, "missing comma between two array elements; add ','")
		default:
			p.fail(p.pos, "expected ',' or ']' after an array element, found %s", quoteRune(p.peekRune()))
		}
	}
}

func (p *parser) failUnclosed(open int, c byte) {
	p.fail(p.pos, "the file ends before the %q opened at %s is closed", c, p.where(open))
}

// where describes an offset in text for messages about an earlier place.
func (p *parser) where(off int) string {
	var lines []int
	l, c := lineCol(p.text, &lines, off)
	return fmt.Sprintf("line %d column %d", l, c)
}

func (p *parser) peekRune() rune {
	r, _ := utf8.DecodeRune(p.text[p.pos:])
	return r
}

func (p *parser) peekWord() string {
	save := p.pos
	w := p.word()
	p.pos = save
	return w
}

// string parses a string starting at the opening quote and returns its
// decoded text.
func (p *parser) string() string {
	open := p.pos
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.text) {
			p.fail(open, "a string is never closed; add the closing '\"'")
		}
		c := p.text[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String()
		case c == '\\':
			p.escape(&b)
		case c == '\n':
			// A raw line break usually means the closing quote is missing.
			p.problem(p.pos, "line break inside a string; write \\n, or add the missing closing quote")
			b.WriteByte(c)
			p.pos++
		case c < 0x20:
			p.problem(p.pos, "control character %U inside a string; escape it as \\u%04x", c, c)
			b.WriteByte(c)
			p.pos++
		case c < 0x80:
			b.WriteByte(c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.text[p.pos:])
			if r == utf8.RuneError && size == 1 {
				p.problem(p.pos, "invalid UTF-8 byte 0x%02x inside a string; save the file as UTF-8", c)
			}
			b.WriteRune(r)
			p.pos += size
		}
	}
}

func (p *parser) escape(b *strings.Builder) {
	at := p.pos
	if p.pos+1 >= len(p.text) {
		p.fail(at, "a string is never closed; add the closing '\"'")
	}
	e := p.text[p.pos+1]
	p.pos += 2
	switch e {
	case '"', '\\', '/':
		b.WriteByte(e)
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		r, ok := p.hex4()
		if !ok {
			p.problem(at, `invalid \u escape; it needs four hex digits`)
			b.WriteRune(utf8.RuneError)
			return
		}
		if r >= 0xd800 && r < 0xdc00 && p.pos+1 < len(p.text) && p.text[p.pos] == '\\' && p.text[p.pos+1] == 'u' {
			save := p.pos
			p.pos += 2
			if lo, ok := p.hex4(); ok && lo >= 0xdc00 && lo < 0xe000 {
				r = (r-0xd800)<<10 + (lo - 0xdc00) + 0x10000
			} else {
				p.pos = save
			}
		}
		b.WriteRune(r)
	default:
		p.problem(at, "invalid escape %s in a string; write \\\\ for a backslash", quoteShort(`\`+string(rune(e)), 4))
		b.WriteByte('\\')
		b.WriteByte(e)
	}
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.text) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.text[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(v), true
}

func (p *parser) number(path string) *node {
	start := p.pos
	i := p.pos
	t := p.text
	if i < len(t) && t[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		return i - s
	}
	intStart := i
	if digits() == 0 {
		p.fail(start, "invalid number: a digit must follow '-'")
	}
	if t[intStart] == '0' && i-intStart > 1 {
		p.fail(start, "invalid number %s: JSON numbers have no leading zeros", quoteShort(string(t[start:i]), 20))
	}
	if i < len(t) && t[i] == '.' {
		i++
		if digits() == 0 {
			p.fail(start, "invalid number: a digit must follow the decimal point")
		}
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.fail(start, "invalid number: the exponent has no digits")
		}
	}
	if i < len(t) && (t[i] == '_' || t[i] >= 'a' && t[i] <= 'z' || t[i] >= 'A' && t[i] <= 'Z') {
		p.fail(start, "invalid number %s; put text in double quotes", quoteShort(firstToken(t[start:]), 20))
	}
	p.pos = i
	return &node{kind: kNumber, start: start, end: i, path: path, str: string(t[start:i])}
}

func firstToken(b []byte) string {
	i := bytes.IndexAny(b, " \t\r\n,}]")
	if i < 0 {
		i = len(b)
	}
	return string(b[:i])
}

// pythonLiteral returns the JSON spelling of a Python literal.
func pythonLiteral(w string) string {
	switch w {
	case "True":
		return "true"
	case "False":
		return "false"
	}
	return "null"
}
