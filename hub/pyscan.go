package hub

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file finds the workflow edits a Python handler makes: assignments of
// the form
//
//	prompt["106"]["inputs"]["image"] = path
//	workflow[NODE_MAP["seed"]]["inputs"]["noise_seed"] = seed
//	wf["3"]["inputs"].update({"seed": s, "steps": n})
//
// It tokenizes Python (strings of every kind, comments, line continuations,
// brackets) rather than running regular expressions over raw text, so ids in
// comments, docstrings and reads such as prompt.get("106") are not taken for
// writes. Node ids must be string literals, module-level constants or entries
// of a module-level dict literal; anything computed is skipped.

type pyKind uint8

const (
	pyName pyKind = iota
	pyString
	pyNumber
	pyOp
)

// pyTok is one Python token.
type pyTok struct {
	kind pyKind
	// text is a name, an operator, a number, or a string's decoded value.
	text string
	// dynamic marks f-strings and byte strings, which are not constant ids.
	dynamic   bool
	line, col int // 1-based; col counts characters
}

// pyLine is one logical line: tokens up to a newline outside brackets.
type pyLine struct {
	indent int // column of the first token, 0-based
	toks   []pyTok
}

// scanPython splits src into logical lines of tokens. It never fails: odd
// input gives odd tokens, not errors.
func scanPython(src []byte) []pyLine {
	s := &pyScanner{src: src, line: 1, lineStart: 0}
	return s.run()
}

type pyScanner struct {
	src       []byte
	pos       int
	line      int
	lineStart int
	depth     int
	// all holds every token; spans marks where each logical line's tokens
	// are, so lines share one backing array.
	all   []pyTok
	spans []lineSpan
	first int // index in all of the current line's first token
	cur   int // indent of the current line
}

type lineSpan struct{ indent, start, end int }

func (s *pyScanner) col(off int) int {
	return utf8.RuneCount(s.src[s.lineStart:off]) + 1
}

func (s *pyScanner) newline() {
	s.line++
	s.lineStart = s.pos
}

func (s *pyScanner) endLine() {
	if len(s.all) > s.first {
		s.spans = append(s.spans, lineSpan{s.cur, s.first, len(s.all)})
	}
	s.first = len(s.all)
}

func (s *pyScanner) emit(t pyTok) {
	if len(s.all) == s.first {
		s.cur = t.col - 1
	}
	s.all = append(s.all, t)
}

func (s *pyScanner) run() []pyLine {
	s.all = make([]pyTok, 0, len(s.src)/6+1)
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '\n':
			s.pos++
			s.newline()
			if s.depth == 0 {
				s.endLine()
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			s.pos++
		case c == '#':
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		case c == '\\' && s.pos+1 < len(s.src) && (s.src[s.pos+1] == '\n' || s.src[s.pos+1] == '\r'):
			// Line continuation.
			s.pos++
			if s.src[s.pos] == '\r' {
				s.pos++
			}
			if s.pos < len(s.src) && s.src[s.pos] == '\n' {
				s.pos++
			}
			s.newline()
		case c == '"' || c == '\'':
			s.str(s.pos, "")
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			start := s.pos
			for s.pos < len(s.src) {
				r, size := utf8.DecodeRune(s.src[s.pos:])
				if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
					s.pos += size
					continue
				}
				break
			}
			if s.pos == start {
				// A non-letter rune outside a string: skip it.
				_, size := utf8.DecodeRune(s.src[s.pos:])
				s.pos += size
				continue
			}
			word := string(s.src[start:s.pos])
			if len(word) <= 3 && s.pos < len(s.src) && (s.src[s.pos] == '"' || s.src[s.pos] == '\'') && isStringPrefix(word) {
				s.str(start, word)
				continue
			}
			s.emit(pyTok{kind: pyName, text: word, line: s.line, col: s.col(start)})
		case c >= '0' && c <= '9' || c == '.' && s.pos+1 < len(s.src) && s.src[s.pos+1] >= '0' && s.src[s.pos+1] <= '9':
			start := s.pos
			for s.pos < len(s.src) && (isAlnum(s.src[s.pos]) || s.src[s.pos] == '.' || s.src[s.pos] == '_') {
				s.pos++
			}
			s.emit(pyTok{kind: pyNumber, text: string(s.src[start:s.pos]), line: s.line, col: s.col(start)})
		default:
			start := s.pos
			op := s.op()
			switch op {
			case "(", "[", "{":
				s.depth++
			case ")", "]", "}":
				if s.depth > 0 {
					s.depth--
				}
			}
			s.emit(pyTok{kind: pyOp, text: op, line: s.line, col: s.col(start)})
		}
	}
	s.endLine()
	lines := make([]pyLine, len(s.spans))
	for i, sp := range s.spans {
		lines[i] = pyLine{indent: sp.indent, toks: s.all[sp.start:sp.end:sp.end]}
	}
	return lines
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isStringPrefix(w string) bool {
	w = strings.ToLower(w)
	switch w {
	case "r", "u", "b", "f", "br", "rb", "fr", "rf", "t", "tr", "rt":
		return true
	}
	return false
}

// op consumes one operator, longest match first.
func (s *pyScanner) op() string {
	for _, n := range []int{3, 2} {
		if s.pos+n <= len(s.src) {
			cand := string(s.src[s.pos : s.pos+n])
			switch cand {
			case "**=", "//=", ">>=", "<<=", "...",
				"==", "!=", "<=", ">=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=", ":=", "->", "**", "//", "<<", ">>":
				s.pos += n
				return cand
			}
		}
	}
	_, size := utf8.DecodeRune(s.src[s.pos:])
	op := string(s.src[s.pos : s.pos+size])
	s.pos += size
	return op
}

// str consumes a string literal whose prefix starts at start and whose
// quote is at s.pos.
func (s *pyScanner) str(start int, prefix string) {
	line, col := s.line, s.col(start)
	p := strings.ToLower(prefix)
	raw := strings.Contains(p, "r")
	dynamic := strings.ContainsAny(p, "fbt")
	q := s.src[s.pos]
	triple := s.pos+2 < len(s.src) && s.src[s.pos+1] == q && s.src[s.pos+2] == q
	if triple {
		s.pos += 3
	} else {
		s.pos++
	}
	var b strings.Builder
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == q && (!triple || s.pos+2 < len(s.src) && s.src[s.pos+1] == q && s.src[s.pos+2] == q):
			if triple {
				s.pos += 3
			} else {
				s.pos++
			}
			s.emit(pyTok{kind: pyString, text: b.String(), dynamic: dynamic, line: line, col: col})
			return
		case c == '\n':
			if !triple {
				// An unterminated string ends at the line break.
				s.emit(pyTok{kind: pyString, text: b.String(), dynamic: true, line: line, col: col})
				return
			}
			b.WriteByte(c)
			s.pos++
			s.newline()
		case c == '\\' && s.pos+1 < len(s.src):
			e := s.src[s.pos+1]
			s.pos += 2
			if e == '\n' {
				s.newline()
				if !raw {
					continue
				}
			}
			if raw {
				b.WriteByte('\\')
				b.WriteByte(e)
				continue
			}
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
			s.pos++
		}
	}
	s.emit(pyTok{kind: pyString, text: b.String(), dynamic: true, line: line, col: col})
}

// nodeWrite is one write into a workflow node's inputs.
type nodeWrite struct {
	id, input string
	line, col int
	// expr is the written expression as the message shows it.
	expr string
	// guarded means the write sits under `if "<id>" in prompt:`, so a
	// workflow without the node is expected.
	guarded bool
}

// handlerWrites returns the node-input writes of a Python handler.
func handlerWrites(src []byte) []nodeWrite {
	lines := scanPython(src)
	consts, dicts := pyConstants(lines)
	var out []nodeWrite
	type guard struct {
		indent int
		ids    []string
	}
	var guards []guard
	for _, ln := range lines {
		for len(guards) > 0 && ln.indent <= guards[len(guards)-1].indent {
			guards = guards[:len(guards)-1]
		}
		if first := ln.toks[0]; first.kind == pyName && (first.text == "if" || first.text == "elif" || first.text == "while") {
			if ids := containmentIDs(ln.toks); len(ids) > 0 {
				guards = append(guards, guard{indent: ln.indent, ids: ids})
			}
		}
		for i := range ln.toks {
			for _, w := range matchWrite(ln.toks, i, consts, dicts) {
				// Under a block that tests node ids for presence, which
				// nodes exist depends on the workflow loaded.
				w.guarded = len(guards) > 0
				out = append(out, w)
			}
		}
	}
	return out
}

// containmentIDs returns the string literals tested with `in` / `not in`.
func containmentIDs(toks []pyTok) []string {
	var ids []string
	for i := 0; i+1 < len(toks); i++ {
		t := toks[i]
		if t.kind != pyString || t.dynamic {
			continue
		}
		n := toks[i+1]
		if n.kind == pyName && (n.text == "in" || n.text == "not" && i+2 < len(toks) && toks[i+2].text == "in") {
			ids = append(ids, t.text)
		}
	}
	return ids
}

// pyConstants returns module-level names bound once to a string literal, and
// to a dict literal of string → string.
func pyConstants(lines []pyLine) (map[string]string, map[string]map[string]string) {
	consts := map[string]string{}
	dicts := map[string]map[string]string{}
	bound := map[string]int{}
	for _, ln := range lines {
		t := ln.toks
		for i := 0; i < len(t); i++ {
			// name = …, name: T = …, for name in, as name
			if t[i].kind == pyName && i+1 < len(t) && t[i+1].kind == pyOp && (t[i+1].text == "=" || t[i+1].text == ":=") && (i == 0 || t[i-1].text != ".") {
				bound[t[i].text]++
			}
			if t[i].kind == pyName && (t[i].text == "for" || t[i].text == "as" || t[i].text == "global" || t[i].text == "nonlocal") && i+1 < len(t) && t[i+1].kind == pyName {
				bound[t[i+1].text] += 2
			}
		}
		if ln.indent != 0 || len(t) < 3 || t[0].kind != pyName || t[1].text != "=" {
			continue
		}
		name := t[0].text
		if len(t) == 3 && t[2].kind == pyString && !t[2].dynamic {
			consts[name] = t[2].text
			continue
		}
		if t[2].text == "{" {
			if d, ok := pyStringDict(t[2:]); ok {
				dicts[name] = d
			}
		}
	}
	for name, n := range bound {
		if n > 1 {
			delete(consts, name)
			delete(dicts, name)
		}
	}
	return consts, dicts
}

// pyStringDict reads a dict literal of string keys and string values; it
// fails on anything else.
func pyStringDict(t []pyTok) (map[string]string, bool) {
	if len(t) < 2 || t[0].text != "{" || t[len(t)-1].text != "}" {
		return nil, false
	}
	d := map[string]string{}
	body := t[1 : len(t)-1]
	for i := 0; i < len(body); {
		if i+2 >= len(body) || body[i].kind != pyString || body[i].dynamic || body[i+1].text != ":" || body[i+2].kind != pyString || body[i+2].dynamic {
			return nil, false
		}
		d[body[i].text] = body[i+2].text
		i += 3
		if i < len(body) {
			if body[i].text != "," {
				return nil, false
			}
			i++
		}
	}
	return d, true
}

func isAssignOp(s string) bool {
	switch s {
	case "=", "+=", "-=", "*=", "/=", "//=", "%=", "**=", "|=", "&=", "^=", ">>=", "<<=", "@=":
		return true
	}
	return false
}

// matchWrite matches NAME[ID]["inputs"][KEY] = … (or .update({...})) at
// toks[i].
func matchWrite(toks []pyTok, i int, consts map[string]string, dicts map[string]map[string]string) []nodeWrite {
	t := toks
	if t[i].kind != pyName || i+1 >= len(t) || t[i+1].text != "[" {
		return nil
	}
	if i > 0 && t[i-1].kind == pyOp && t[i-1].text == "]" {
		return nil
	}
	varName := t[i].text
	j := i + 2
	id, exprID, ok := "", "", false
	switch {
	case j+1 < len(t) && t[j].kind == pyString && !t[j].dynamic && t[j+1].text == "]":
		id, exprID, ok = t[j].text, quotePy(t[j].text), true
		j += 2
	case j+1 < len(t) && t[j].kind == pyName && t[j+1].text == "]":
		if v, found := consts[t[j].text]; found {
			id, exprID, ok = v, t[j].text, true
		}
		j += 2
	case j+4 < len(t) && t[j].kind == pyName && t[j+1].text == "[" && t[j+2].kind == pyString && !t[j+2].dynamic && t[j+3].text == "]" && t[j+4].text == "]":
		if d, found := dicts[t[j].text]; found {
			if v, found := d[t[j+2].text]; found {
				id, exprID, ok = v, t[j].text+"["+quotePy(t[j+2].text)+"]", true
			}
		}
		j += 5
	}
	if !ok {
		return nil
	}
	// ["inputs"]
	if j+2 >= len(t) || t[j].text != "[" || t[j+1].kind != pyString || t[j+1].text != "inputs" || t[j+2].text != "]" {
		return nil
	}
	j += 3
	prefix := varName + "[" + exprID + "][\"inputs\"]"
	line, col := t[i].line, t[i].col
	// .update({"k": v, …})
	if j+3 < len(t) && t[j].text == "." && t[j+1].text == "update" && t[j+2].text == "(" && t[j+3].text == "{" {
		var out []nodeWrite
		depth := 0
		for k := j + 3; k < len(t); k++ {
			switch t[k].text {
			case "{", "[", "(":
				depth++
			case "}", "]", ")":
				depth--
			}
			if depth <= 0 {
				break
			}
			if depth == 1 && t[k].kind == pyString && !t[k].dynamic && k+1 < len(t) && t[k+1].text == ":" && (t[k-1].text == "{" || t[k-1].text == ",") {
				out = append(out, nodeWrite{id: id, input: t[k].text, line: line, col: col, expr: prefix + ".update({" + quotePy(t[k].text) + ": …})"})
			}
		}
		return out
	}
	// [KEY] followed by an assignment
	if j+2 >= len(t) || t[j].text != "[" || t[j+1].kind != pyString || t[j+1].dynamic || t[j+2].text != "]" {
		return nil
	}
	key := t[j+1].text
	j += 3
	if j >= len(t) {
		return nil
	}
	next := t[j].text
	write := isAssignOp(next)
	if !write && next == "," {
		// a, b = … : a write if a depth-0 "=" follows.
		depth := 0
		for k := j; k < len(t); k++ {
			switch t[k].text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
			if depth == 0 && t[k].text == "=" {
				write = true
				break
			}
		}
	}
	if !write {
		return nil
	}
	return []nodeWrite{{id: id, input: key, line: line, col: col, expr: prefix + "[" + quotePy(key) + "]"}}
}

func quotePy(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
