package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// ConfigFile is the package file that tunes the linter for one package:
//
//	{"disable": ["RP504", "timeout-missing"], "modelSize": "14B"}
//
// disable silences rules by id or name; modelSize declares the size of the
// model the tests load when its file names do not say.
const ConfigFile = "comfypod.lint.json"

// Config configures a Linter.
type Config struct {
	// Catalog is the data the checks use; nil means DefaultCatalog().
	Catalog *Catalog
	// Disable silences rules, by id ("RP504") or name ("boolean-values"),
	// for every package.
	Disable []string
}

// WithDefaults returns a copy of c with unset fields filled in.
func (c *Config) WithDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Catalog == nil {
		out.Catalog = DefaultCatalog()
	}
	return &out
}

func (c *Config) validate(idx ruleIndex) error {
	var bad []string
	for _, d := range c.Disable {
		for _, s := range splitList(d) {
			if _, ok := idx.lookup(s); !ok {
				bad = append(bad, s)
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("unknown rule %s: use an id such as RP302 or a name such as cuda-mismatch (see docs/lint.md)", strings.Join(bad, ", "))
	}
	return nil
}

// splitList splits a comma-separated list and drops empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Linter checks RunPod Hub packages: .runpod/hub.json and tests.json against
// RunPod's schema and against each other, the Dockerfile, and the node ids
// the handler and package manifest write into the shipped workflows. It is
// safe for concurrent use.
type Linter struct {
	cat      *Catalog
	rules    ruleIndex
	disabled map[string]bool
}

// New returns a Linter. It fails if cfg disables a rule that does not exist.
func New(cfg *Config) (*Linter, error) {
	cfg = cfg.WithDefaults()
	idx := newRuleIndex()
	if err := cfg.validate(idx); err != nil {
		return nil, err
	}
	l := &Linter{cat: cfg.Catalog, rules: idx, disabled: map[string]bool{}}
	for _, d := range cfg.Disable {
		for _, s := range splitList(d) {
			r, _ := idx.lookup(s)
			l.disabled[r.ID] = true
		}
	}
	return l, nil
}

// Lint checks the package in folder dir.
func (l *Linter) Lint(ctx context.Context, dir string) (*Result, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("lint %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("lint %s: not a folder; give the package folder (the one holding .runpod/)", dir)
	}
	return l.LintFS(ctx, os.DirFS(dir), dir)
}

// LintFS checks the package at the root of fsys; name is how the result
// names the package (Result.Dir).
func (l *Linter) LintFS(ctx context.Context, fsys fs.FS, name string) (*Result, error) {
	c := &pkgCtx{l: l, cat: l.cat, fsys: fsys, disabled: l.disabled}
	if err := c.load(ctx); err != nil {
		return nil, fmt.Errorf("lint %s: %w", name, err)
	}
	for _, check := range []func(){
		c.checkFiles,
		c.checkJSONSyntax,
		c.checkHub,
		c.checkGPUIDs,
		c.checkTests,
		c.checkTestGPU,
		c.checkCUDA,
		c.checkTimeouts,
		c.checkDockerfile,
		c.checkVolumePaths,
		c.checkWorkflows,
	} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		check()
	}
	res := &Result{Dir: name, Findings: make([]Finding, 0, len(c.findings))}
	for _, f := range c.findings {
		if !c.silenced(f.Rule) {
			res.Findings = append(res.Findings, *f)
		}
	}
	res.sort()
	return res, nil
}

// pkgCtx is the state of linting one package.
type pkgCtx struct {
	l        *Linter
	cat      *Catalog
	fsys     fs.FS
	disabled map[string]bool

	files    *pkgFiles
	hub      *jsonDoc // nil when there is none
	tests    *jsonDoc // nil when there is none
	config   *lintConfig
	findings []*Finding
	wfs      []*workflowFile // parsed by workflows()
}

func (c *pkgCtx) silenced(rule string) bool {
	if c.disabled[rule] {
		return true
	}
	return c.config != nil && c.config.disabled[rule]
}

// add records a finding of rule and returns it for the caller to adjust.
func (c *pkgCtx) add(rule, file string, line, col int, path, msg string) *Finding {
	r, ok := c.l.rules[rule]
	if !ok {
		panic("hub: unknown rule " + rule)
	}
	f := &Finding{Rule: r.ID, Name: r.Name, Severity: r.Severity, File: file, Line: line, Column: col, Path: path, Message: msg}
	c.findings = append(c.findings, f)
	return f
}

// atNode records a finding at a JSON value.
func (c *pkgCtx) atNode(d *jsonDoc, n *node, rule, format string, args ...any) *Finding {
	line, col := d.position(n.start)
	return c.add(rule, d.file, line, col, n.path, fmt.Sprintf(format, args...))
}

// atKey records a finding at a member's key, naming the member's path.
func (c *pkgCtx) atKey(d *jsonDoc, m *member, rule, format string, args ...any) *Finding {
	line, col := d.position(m.keyStart)
	return c.add(rule, d.file, line, col, m.value.path, fmt.Sprintf(format, args...))
}

// atOffset records a finding at an offset of a JSON file.
func (c *pkgCtx) atOffset(d *jsonDoc, off int, path, rule, format string, args ...any) *Finding {
	line, col := d.position(off)
	return c.add(rule, d.file, line, col, path, fmt.Sprintf(format, args...))
}

// atFile records a finding about a file (line 0) or a line of it.
func (c *pkgCtx) atFile(file string, line, col int, rule, format string, args ...any) *Finding {
	return c.add(rule, file, line, col, "", fmt.Sprintf(format, args...))
}

// load reads the package's files.
func (c *pkgCtx) load(ctx context.Context) error {
	files, err := discover(ctx, c.fsys)
	if err != nil {
		return err
	}
	c.files = files
	if files.hubPath != "" {
		c.hub = parseJSON(files.hubPath, files.hubData)
	}
	if files.testsPath != "" {
		c.tests = parseJSON(files.testsPath, files.testsData)
	}
	if files.configData != nil {
		c.config = c.parseLintConfig(files.configData)
	}
	return nil
}

// readFile reads a package file, capped so a stray model file cannot exhaust
// memory. A missing file is (nil, nil).
func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, nil
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d the linter reads", name, st.Size(), maxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s is more than the %d bytes the linter reads", name, maxFileSize)
	}
	return b, nil
}

// maxFileSize bounds what the linter reads of one file.
const maxFileSize = 32 << 20
