package hub

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// problemAt returns "line:col msg" of a document's first problem.
func firstProblem(t *testing.T, d *jsonDoc) (line, col int, msg string, fatal bool) {
	t.Helper()
	if len(d.problems) == 0 {
		t.Fatalf("no problem reported for %q", d.src)
	}
	p := d.problems[0]
	line, col = d.position(p.off)
	return line, col, p.msg, p.fatal
}

func TestParseJSONValid(t *testing.T) {
	t.Parallel()
	src := "{\r\n  \"title\": \"Caf\u00e9 \u200b\",\r\n  \"config\": {\"gpuIds\": \"ADA_24\", \"n\": [1, 2.5, -3e2, true, null]}\r\n}\r\n"
	d := parseJSON("hub.json", []byte(src))
	if len(d.problems) > 0 {
		t.Fatalf("problems in valid JSON: %+v", d.problems)
	}
	if got := d.root.get("title").text(); got != "Café \u200b" {
		t.Errorf("title = %q", got)
	}
	g := d.root.get("config").get("gpuIds")
	if g.path != "config.gpuIds" {
		t.Errorf("path = %q", g.path)
	}
	if l, c := d.position(g.start); l != 3 || c != 24 {
		t.Errorf("gpuIds at %d:%d, want 3:24", l, c)
	}
	n := d.root.get("config").get("n")
	if n.elems[2].path != "config.n[2]" || n.elems[2].str != "-3e2" {
		t.Errorf("elem = %+v", n.elems[2])
	}
	if v, ok := n.elems[2].integer(); !ok || v != -300 {
		t.Errorf("integer(-3e2) = %d, %v", v, ok)
	}
	if _, ok := n.elems[1].integer(); ok {
		t.Error("2.5 taken for an integer")
	}
	// The tree agrees with encoding/json.
	var want map[string]any
	if err := json.Unmarshal([]byte(src), &want); err != nil {
		t.Fatal(err)
	}
	if want["title"] != d.root.get("title").str {
		t.Errorf("decoded title differs: %q vs %q", want["title"], d.root.get("title").str)
	}
}

func TestParseJSONProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		src       string
		line, col int
		msg       string
		fatal     bool
		// check runs on the recovered tree when parsing went on.
		check func(t *testing.T, d *jsonDoc)
	}{
		{name: "trailing comma in object", src: "{\n  \"a\": 1,\n}", line: 2, col: 9, msg: "trailing comma",
			check: func(t *testing.T, d *jsonDoc) {
				if v, _ := d.root.get("a").integer(); v != 1 {
					t.Errorf("a = %d", v)
				}
			}},
		{name: "trailing comma in array", src: `{"v": ["12.7", "12.6",]}`, line: 1, col: 22, msg: "trailing comma"},
		{name: "missing comma between members", src: "{\n  \"title\": \"x\"\n  \"type\": \"serverless\"\n}", line: 2, col: 15, msg: "missing comma after the value of `title`",
			check: func(t *testing.T, d *jsonDoc) {
				if d.root.get("type").text() != "serverless" {
					t.Error("member after the missing comma lost")
				}
			}},
		{name: "missing comma in array", src: `["a" "b"]`, line: 1, col: 5, msg: "missing comma between two array elements"},
		{name: "line comment", src: "{\n  // note\n  \"a\": 1\n}", line: 2, col: 3, msg: "comments are not allowed"},
		{name: "block comment", src: "{/* x */\"a\": 1}", line: 1, col: 2, msg: "/* */ comment"},
		{name: "unclosed block comment", src: "{/* x", line: 1, col: 2, msg: "never closed", fatal: true},
		{name: "empty file", src: "", line: 1, col: 1, msg: "the file is empty", fatal: true},
		{name: "whitespace only", src: " \n\t\r\n", line: 3, col: 1, msg: "the file is empty", fatal: true},
		{name: "python source", src: "import runpod\n\ndef handler(job):\n    return {\"a\": 1}\n", line: 1, col: 1, msg: "Python source", fatal: true},
		{name: "python literal", src: `{"a": True}`, line: 1, col: 7, msg: "True is Python, not JSON; write true", fatal: true},
		{name: "single quotes", src: `{'a': 1}`, line: 1, col: 2, msg: "single-quoted key", fatal: true},
		{name: "unquoted key", src: `{a: 1}`, line: 1, col: 2, msg: "key `a` needs double quotes", fatal: true},
		{name: "unclosed object", src: "{\n  \"a\": {\"b\": 1}\n", line: 3, col: 1, msg: "ends before the '{' opened at line 1 column 1", fatal: true},
		{name: "unclosed string", src: `{"a": "b}`, line: 1, col: 7, msg: "never closed", fatal: true},
		{name: "zero-width space between tokens", src: "{\"a\":\u200b 1}", line: 1, col: 6, msg: "zero-width space (U+200B)"},
		{name: "no-break space", src: "{\u00a0\"a\": 1}", line: 1, col: 2, msg: "no-break space"},
		{name: "raw line break in string", src: "{\"a\": \"x\ny\"}", line: 1, col: 9, msg: "line break inside a string"},
		{name: "bad escape", src: `{"a": "C:\dir"}`, line: 1, col: 10, msg: "invalid escape"},
		{name: "leading zero", src: `{"a": 012}`, line: 1, col: 7, msg: "leading zeros", fatal: true},
		{name: "text after value", src: "{\"a\": 1}\n{\"b\": 2}", line: 2, col: 1, msg: "after the end of the JSON value"},
		{name: "mismatched bracket", src: `{"a": [1, 2}`, line: 1, col: 12, msg: "'}' closes an object", fatal: true},
		{name: "equals instead of colon", src: `{"a" = 1}`, line: 1, col: 6, msg: "use ':'", fatal: true},
		{name: "literal escapes", src: `{\n  \"tests\": [\n    {\"name\": \"x\", \"timeout\": 30}\n  ]\n}`, line: 1, col: 2, msg: `literal \n escape sequences`,
			check: func(t *testing.T, d *jsonDoc) {
				to := d.root.get("tests").elems[0].get("timeout")
				if v, _ := to.integer(); v != 30 {
					t.Fatalf("timeout = %v", to)
				}
				// Positions point into the original one-line file.
				if l, c := d.position(to.start); l != 1 || c != strings.Index(string(d.src), "30")+1 {
					t.Errorf("timeout at %d:%d", l, c)
				}
			}},
		{name: "url line before json", src: " url=https://example.com/x/tests.json\n{\"tests\": []}\n", line: 1, col: 2, msg: "before the JSON value; delete that line",
			check: func(t *testing.T, d *jsonDoc) {
				if !d.root.get("tests").is(kArray) {
					t.Error("tests lost")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := parseJSON("f.json", []byte(tc.src))
			line, col, msg, _ := firstProblem(t, d)
			if line != tc.line || col != tc.col || !strings.Contains(msg, tc.msg) {
				t.Errorf("first problem %d:%d %q; want %d:%d containing %q", line, col, msg, tc.line, tc.col, tc.msg)
			}
			if d.fatal() != tc.fatal {
				t.Errorf("fatal = %v, want %v", d.fatal(), tc.fatal)
			}
			if tc.check != nil {
				if d.root == nil {
					t.Fatal("no tree recovered")
				}
				tc.check(t, d)
			}
		})
	}
}

func TestParseJSONBOMAndDuplicates(t *testing.T) {
	t.Parallel()
	d := parseJSON("f.json", []byte("\xef\xbb\xbf{\"a\": 1, \"a\": 2}"))
	if !d.bom || len(d.problems) != 0 {
		t.Fatalf("bom=%v problems=%v", d.bom, d.problems)
	}
	if l, c := d.position(d.root.start); l != 1 || c != 1 {
		t.Errorf("root at %d:%d; the BOM must not count as a column", l, c)
	}
	if v, _ := d.root.get("a").integer(); v != 2 {
		t.Errorf("a = %d; the last duplicate wins", v)
	}
	if len(d.dups) != 1 || d.dups[0].key != "a" {
		t.Errorf("dups = %+v", d.dups)
	}
}

func TestParseJSONDepthLimit(t *testing.T) {
	t.Parallel()
	src := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	d := parseJSON("f.json", []byte(src))
	if !d.fatal() {
		t.Fatal("100000 nested arrays accepted")
	}
	if _, _, msg, _ := firstProblem(t, d); !strings.Contains(msg, "nested more than") {
		t.Errorf("msg = %q", msg)
	}
}

func TestPathsQuoteOddKeys(t *testing.T) {
	t.Parallel()
	d := parseJSON("f.json", []byte(`{"a b": {"c": [{"d.e": 1}]}}`))
	got := d.root.get("a b").get("c").elems[0].get("d.e").path
	if want := `["a b"].c[0]["d.e"]`; got != want {
		t.Errorf("path = %s, want %s", got, want)
	}
}

// FuzzParseJSON checks that no input crashes the reader, that positions stay
// inside the file, and that strict JSON is read without problems and agrees
// with encoding/json.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{"title": "x", "config": {"gpuIds": "ADA_24"}}`,
		"{\n  \"a\": 1,\n}",
		"{\"a\": 1 \"b\": 2}",
		`{\n  \"tests\": []\n}`,
		"import runpod\n",
		"\xef\xbb\xbf{}",
		"{\"a\":\u200b1}",
		" url=x\n{}",
		`[1, [2, [3, {"a": "\ud83d\ude00"}]]]`,
		"{/* c */ \"a\": // d\n 1}",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := parseJSON("f.json", data)
		for _, p := range d.problems {
			line, col := d.position(p.off)
			if line < 1 || col < 1 || line > strings.Count(string(data), "\n")+1 {
				t.Fatalf("problem %q at %d:%d outside the file", p.msg, line, col)
			}
			if p.msg == "" {
				t.Fatal("empty problem message")
			}
		}
		if json.Valid(data) && utf8.Valid(data) {
			if d.root == nil || len(d.problems) > 0 {
				t.Fatalf("valid JSON %q gave problems %+v", data, d.problems)
			}
		}
		if d.root != nil {
			walk(t, d, d.root)
		}
	})
}

func walk(t *testing.T, d *jsonDoc, n *node) {
	if n.start < 0 || n.end > len(d.text) || n.start > n.end {
		t.Fatalf("node %s spans %d-%d in %d bytes", n.path, n.start, n.end, len(d.text))
	}
	for _, m := range n.members {
		walk(t, d, m.value)
	}
	for _, e := range n.elems {
		walk(t, d, e)
	}
}
