package hub

import (
	"fmt"
	"strings"
	"testing"
)

func writeList(ws []nodeWrite) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		g := ""
		if w.guarded {
			g = " guarded"
		}
		out[i] = fmt.Sprintf("%d:%d %s.%s%s", w.line, w.col, w.id, w.input, g)
	}
	return out
}

func TestHandlerWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{"plain", `prompt["106"]["inputs"]["image"] = image_path  # LoadImage`, []string{"1:1 106.image"}},
		{"single quotes and spaces", `wf[ '5' ][ 'inputs' ][ 'seed' ] = 1`, []string{"1:1 5.seed"}},
		{"augmented", `prompt["3"]["inputs"]["steps"] += 1`, []string{"1:1 3.steps"}},
		{"subgraph id", `prompt["320:302"]["inputs"]["value"] = v`, []string{"1:1 320:302.value"}},
		{"attribute base", `self.prompt["7"]["inputs"]["text"] = t`, []string{"1:6 7.text"}},
		{"continuation", "segment_workflow[\"270\"][\"inputs\"][\"value\"] = \\\n    max_frame", []string{"1:1 270.value"}},
		{"tuple target", `p["1"]["inputs"]["a"], p["2"]["inputs"]["b"] = x, y`, []string{"1:1 1.a", "1:24 2.b"}},
		{"update", `p["3"]["inputs"].update({"seed": s, "steps": n, **rest})`, []string{"1:1 3.seed", "1:1 3.steps"}},
		{"module constant", "NODE = \"12\"\ndef f(p):\n    p[NODE][\"inputs\"][\"image\"] = x\n", []string{"3:5 12.image"}},
		{"module dict", "NODE_MAP = {\"image\": \"269\", \"seed\": \"267:216\"}\nwf[NODE_MAP[\"seed\"]][\"inputs\"][\"noise_seed\"] = 1\n", []string{"2:1 267:216.noise_seed"}},
		{"guarded block", "if \"834\" in prompt:\n    prompt[\"834\"][\"inputs\"][\"steps\"] = s\n    prompt[\"829\"][\"inputs\"][\"step\"] = t\nprompt[\"9\"][\"inputs\"][\"x\"] = 1\n",
			[]string{"2:5 834.steps guarded", "3:5 829.step guarded", "4:1 9.x"}},
		{"elif guard", "if \"307\" in p:\n    pass\nelif \"313\" in p:\n    p[\"313\"][\"inputs\"][\"audio\"] = a\n", []string{"4:5 313.audio guarded"}},
		{"one-line guard", `if "5" in p: p["5"]["inputs"]["x"] = 1`, []string{"1:14 5.x guarded"}},

		// Not writes.
		{"read", `x = prompt["106"]["inputs"]["image"]`, nil},
		{"comparison", `if prompt["106"]["inputs"]["image"] == "a": pass`, nil},
		{"get chain", `prompt.get("106", {}).get("inputs", {})["image"] = 1`, nil},
		{"comment", `# prompt["106"]["inputs"]["image"] = x`, nil},
		{"string", `s = 'prompt["106"]["inputs"]["image"] = x'`, nil},
		{"docstring", "\"\"\"\nprompt[\"106\"][\"inputs\"][\"image\"] = x\n\"\"\"\n", nil},
		{"f-string id", `prompt[f"{n}"]["inputs"]["image"] = x`, nil},
		{"f-string input", `prompt["5"]["inputs"][f"lora_{i}"] = x`, nil},
		{"variable id", `prompt[node_id]["inputs"]["image"] = x`, nil},
		{"reassigned constant", "NODE = \"1\"\nNODE = \"2\"\np[NODE][\"inputs\"][\"x\"] = 1\n", nil},
		{"loop variable", "NODE = \"1\"\nfor NODE in ids:\n    p[NODE][\"inputs\"][\"x\"] = 1\n", nil},
		{"not inputs", `prompt["106"]["widgets"]["image"] = x`, nil},
		{"unterminated string", "x = \"abc\nprompt[\"1\"][\"inputs\"][\"a\"] = 2\n", []string{"2:1 1.a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := writeList(handlerWrites([]byte(tc.src)))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("writes of %q:\n got %v\nwant %v", tc.src, got, tc.want)
			}
		})
	}
}

func TestScanPythonColumnsCountCharacters(t *testing.T) {
	t.Parallel()
	got := writeList(handlerWrites([]byte("s = \"日本\"; p[\"1\"][\"inputs\"][\"a\"] = 1")))
	if len(got) != 1 || got[0] != "1:11 1.a" {
		t.Errorf("got %v, want column 11", got)
	}
}

// FuzzHandlerWrites checks that the scanner never crashes or loops and
// reports only positions inside the file.
func FuzzHandlerWrites(f *testing.F) {
	for _, s := range []string{
		`prompt["106"]["inputs"]["image"] = image_path`,
		"if \"834\" in prompt:\n    prompt[\"834\"][\"inputs\"][\"steps\"] = s\n",
		"NODE_MAP = {\"a\": \"1\"}\nwf[NODE_MAP[\"a\"]][\"inputs\"][\"x\"] = 1\n",
		"p[\"3\"][\"inputs\"].update({\"seed\": 1})",
		"'''unterminated",
		"x = f'{a[\"b\"]}'\\\n",
		"((((",
		"rb'\\x00' u\"\\u1234\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		lines := strings.Count(string(src), "\n") + 1
		for _, w := range handlerWrites(src) {
			if w.line < 1 || w.line > lines || w.col < 1 || w.expr == "" {
				t.Fatalf("write %+v outside %d lines", w, lines)
			}
		}
	})
}
