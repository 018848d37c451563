package hub

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/comfypod/comfypod/internal/suggest"
	"github.com/comfypod/comfypod/internal/truncate"
)

// checkJSONSyntax reports what keeps hub.json and tests.json from being
// strict JSON.
func (c *pkgCtx) checkJSONSyntax() {
	for _, d := range []*jsonDoc{c.hub, c.tests} {
		if d == nil {
			continue
		}
		c.syntaxFindings(d)
	}
}

func (c *pkgCtx) syntaxFindings(d *jsonDoc) {
	if d.bom {
		c.atFile(d.file, 1, 1, ruleJSONBOM, "the file starts with a UTF-8 byte order mark, which JSON.parse and Python's json.loads reject; save it as UTF-8 without BOM")
	}
	for _, p := range d.problems {
		f := c.atOffset(d, p.off, "", ruleInvalidJSON, "%s", p.msg)
		if p.fatal {
			f.Message += "; the rest of the file was not checked"
		}
	}
	for _, dup := range d.dups {
		line, _ := d.position(dup.prev)
		c.atOffset(d, dup.off, dup.path, ruleDuplicateKey, "key %q appears twice in this object (first on line %d); only this last one counts, so delete one", dup.key, line)
	}
}

// usable reports whether a document's content can be checked: it parsed, even
// if with recoverable problems.
func usable(d *jsonDoc) bool { return d != nil && d.root != nil && !d.fatal() }

// expect reports a field-type finding unless n is of kind k. It returns
// whether n has that kind.
func (c *pkgCtx) expect(d *jsonDoc, n *node, k kind, hint string) bool {
	if n == nil {
		return false
	}
	if n.kind == k {
		return true
	}
	msg := fmt.Sprintf("want %s, got %s", k, describe(n))
	if hint != "" {
		msg += "; " + hint
	}
	c.atNode(d, n, ruleFieldType, "%s", msg)
	return false
}

// describe names a value for messages: its kind, and short values in full.
func describe(n *node) string {
	switch n.kind {
	case kString:
		return "the string " + strconv.Quote(scrub(truncate.Runes(n.str, 60)))
	case kNumber, kBool:
		return n.kind.String() + " " + n.str
	case kNull:
		return "null"
	}
	return n.kind.String()
}

// field describes a known member of an object.
type field struct {
	name string
	// aliases are keys people write for this field by mistake.
	aliases []string
}

// checkUnknown reports members of obj that are not in known, suggesting the
// field they were probably meant to be. accepted are keys to allow silently.
func (c *pkgCtx) checkUnknown(d *jsonDoc, obj *node, where string, known []field, accepted []string, hints map[string]string) {
	if !obj.is(kObject) {
		return
	}
	names := make([]string, len(known))
	for i, f := range known {
		names[i] = f.name
	}
	for _, m := range obj.members {
		if slices.Contains(names, m.key) || slices.Contains(accepted, m.key) {
			continue
		}
		msg := fmt.Sprintf("unknown field %q in %s", m.key, where)
		if h, ok := hints[m.key]; ok {
			msg += "; " + h
		} else if s := suggestField(m.key, known); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += "; known fields: " + strings.Join(names, ", ")
		}
		c.atKey(d, m, ruleUnknownField, "%s", msg)
	}
}

func suggestField(key string, known []field) string {
	for _, f := range known {
		if slices.Contains(f.aliases, key) || strings.EqualFold(f.name, key) {
			return f.name
		}
	}
	names := make([]string, len(known))
	for i, f := range known {
		names[i] = f.name
	}
	return suggest.Closest(key, names, 2)
}

// quoteList quotes and joins values for messages.
func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// lintConfig is a package's comfypod.lint.json.
type lintConfig struct {
	disabled  map[string]bool
	modelSize float64 // billions of parameters; 0 when not declared
}

// parseLintConfig reads comfypod.lint.json. It is our own file, so comments
// are tolerated; anything else wrong is reported.
func (c *pkgCtx) parseLintConfig(data []byte) *lintConfig {
	d := parseJSON(ConfigFile, data)
	cfg := &lintConfig{disabled: map[string]bool{}}
	for _, p := range d.problems {
		if strings.Contains(p.msg, "comments are not allowed") {
			continue
		}
		c.atOffset(d, p.off, "", ruleLintConfig, "%s", p.msg)
	}
	if d.fatal() {
		return cfg
	}
	if !d.root.is(kObject) {
		c.atNode(d, d.root, ruleLintConfig, "want an object such as {\"disable\": [\"RP504\"], \"modelSize\": \"14B\"}, got %s", describe(d.root))
		return cfg
	}
	for _, m := range d.root.members {
		switch m.key {
		case "disable":
			if !m.value.is(kArray) {
				c.atNode(d, m.value, ruleLintConfig, "disable: want an array of rule ids or names, got %s", describe(m.value))
				continue
			}
			for _, e := range m.value.elems {
				r, ok := c.l.rules.lookup(e.text())
				if !ok {
					c.atNode(d, e, ruleLintConfig, "unknown rule %s; use an id such as RP504 or a name such as boolean-values (docs/lint.md lists them)", quoteShort(scalarText(e), 40))
					continue
				}
				cfg.disabled[r.ID] = true
			}
		case "modelSize":
			size, ok := parseModelSize(m.value.text())
			if !ok && m.value.is(kNumber) {
				if v, err := strconv.ParseFloat(m.value.str, 64); err == nil && v > 0 {
					size, ok = v, true
				}
			}
			if !ok {
				c.atNode(d, m.value, ruleLintConfig, "modelSize: want a size such as \"14B\" or \"350M\" (parameters), got %s", describe(m.value))
				continue
			}
			cfg.modelSize = size
		case "$schema":
		default:
			c.atKey(d, m, ruleLintConfig, "unknown field %q; %s takes disable and modelSize", m.key, ConfigFile)
		}
	}
	return cfg
}
