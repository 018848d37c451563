package hub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// Report is the result of one lint run over one or more packages, in the
// formats comfypod lint prints.
type Report struct {
	// Results are the packages' results, in the order they were linted.
	Results []*Result
}

// Count returns the number of findings of severity s in every package.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, res := range r.Results {
		n += res.Count(s)
	}
	return n
}

// Fixable returns the number of findings ApplyFixes can fix.
func (r *Report) Fixable() int {
	n := 0
	for _, res := range r.Results {
		n += res.Fixable()
	}
	return n
}

// Failed reports whether the run should fail: any error, or with strict any
// warning.
func (r *Report) Failed(strict bool) bool {
	for _, res := range r.Results {
		if res.Failed(strict) {
			return true
		}
	}
	return false
}

// filePath joins a package folder and a file for display, with forward
// slashes.
func filePath(dir, file string) string {
	dir = filepath.ToSlash(dir)
	if file == "" {
		return path.Clean(dir)
	}
	if dir == "" || dir == "." {
		return file
	}
	return path.Join(dir, file)
}

// TextOptions tune WriteText.
type TextOptions struct {
	// Color adds ANSI colours, for terminals.
	Color bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// WriteText writes findings for people: grouped by file, one line each, and a
// summary line.
func (r *Report) WriteText(w io.Writer, opts TextOptions) error {
	paint := func(code, s string) string {
		if !opts.Color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	for _, res := range r.Results {
		current := "\x00"
		for _, f := range res.Findings {
			header := filePath(res.Dir, f.File)
			if f.File == "" {
				header += " (package)"
			}
			if header != current {
				if current != "\x00" {
					b.WriteByte('\n')
				}
				b.WriteString(paint(ansiBold, header) + "\n")
				current = header
			}
			pos := ""
			if f.Line > 0 {
				pos = fmt.Sprintf("%d:%d", f.Line, f.Column)
			}
			sev := fmt.Sprintf("%-7s", f.Severity)
			switch f.Severity {
			case Error:
				sev = paint(ansiRed+ansiBold, sev)
			case Warning:
				sev = paint(ansiYellow, sev)
			default:
				sev = paint(ansiCyan, sev)
			}
			msg := f.Message
			if f.Path != "" {
				msg = f.Path + ": " + msg
			}
			fix := ""
			if f.Fix != nil {
				fix = " (fixable)"
			}
			fmt.Fprintf(&b, "  %-7s %s %s%s %s\n", pos, sev, msg, fix, paint(ansiDim, "["+f.Rule+" "+f.Name+"]"))
		}
		if len(res.Findings) > 0 {
			b.WriteByte('\n')
		}
	}
	b.WriteString(r.summary(paint) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary returns the one-line summary WriteText ends with.
func (r *Report) Summary() string {
	return r.summary(func(_, s string) string { return s })
}

func (r *Report) summary(paint func(code, s string) string) string {
	e, wn, in := r.Count(Error), r.Count(Warning), r.Count(Info)
	pkgs := plural(len(r.Results), "package")
	if e+wn+in == 0 {
		return paint(ansiBold, "no problems") + " in " + pkgs
	}
	parts := []string{}
	if e > 0 {
		parts = append(parts, paint(ansiRed+ansiBold, plural(e, "error")))
	}
	if wn > 0 {
		parts = append(parts, paint(ansiYellow, plural(wn, "warning")))
	}
	if in > 0 {
		parts = append(parts, paint(ansiCyan, plural(in, "info")))
	}
	s := strings.Join(parts, ", ") + " in " + pkgs
	if n := r.Fixable(); n > 0 {
		s += fmt.Sprintf("; %d fixable with --fix", n)
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// JSONSchemaVersion is the version of the --format json document; it changes
// only when a field changes meaning or disappears.
const JSONSchemaVersion = 1

type jsonFinding struct {
	Rule     string   `json:"rule"`
	Name     string   `json:"name"`
	Severity Severity `json:"severity"`
	File     string   `json:"file,omitempty"`
	Line     int      `json:"line,omitempty"`
	Column   int      `json:"column,omitempty"`
	Path     string   `json:"path,omitempty"`
	Message  string   `json:"message"`
	Fixable  bool     `json:"fixable"`
}

type jsonCounts struct {
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	Infos    int `json:"infos"`
	Fixable  int `json:"fixable"`
}

// WriteJSON writes the findings as one JSON document:
//
//	{"version": 1, "packages": [{"dir", "findings": [{"rule", "name",
//	  "severity", "file", "line", "column", "path", "message", "fixable"}],
//	  "summary"}], "summary": {"errors", "warnings", "infos", "fixable"}}
//
// Files are relative to their package's dir, with forward slashes.
func (r *Report) WriteJSON(w io.Writer) error {
	type jsonPackage struct {
		Dir      string        `json:"dir"`
		Findings []jsonFinding `json:"findings"`
		Summary  jsonCounts    `json:"summary"`
	}
	doc := struct {
		Version  int           `json:"version"`
		Packages []jsonPackage `json:"packages"`
		Summary  jsonCounts    `json:"summary"`
	}{Version: JSONSchemaVersion, Packages: []jsonPackage{}}
	for _, res := range r.Results {
		p := jsonPackage{Dir: filepath.ToSlash(res.Dir), Findings: []jsonFinding{},
			Summary: jsonCounts{res.Count(Error), res.Count(Warning), res.Count(Info), res.Fixable()}}
		for _, f := range res.Findings {
			p.Findings = append(p.Findings, jsonFinding{f.Rule, f.Name, f.Severity, f.File, f.Line, f.Column, f.Path, f.Message, f.Fix != nil})
		}
		doc.Packages = append(doc.Packages, p)
	}
	doc.Summary = jsonCounts{r.Count(Error), r.Count(Warning), r.Count(Info), r.Fixable()}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// docsURL is where each rule is explained.
const docsURL = "https://github.com/comfypod/comfypod/blob/main/docs/lint.md"

// WriteSARIF writes the findings as a SARIF 2.1.0 log, the format GitHub
// code scanning uploads. toolVersion is comfypod's version.
func (r *Report) WriteSARIF(w io.Writer, toolVersion string) error {
	type text struct {
		Text string `json:"text"`
	}
	type sarifRule struct {
		ID                   string            `json:"id"`
		Name                 string            `json:"name"`
		ShortDescription     text              `json:"shortDescription"`
		HelpURI              string            `json:"helpUri"`
		DefaultConfiguration map[string]string `json:"defaultConfiguration"`
	}
	type artifact = sarifArtifact
	type region struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn,omitempty"`
		EndLine     int `json:"endLine,omitempty"`
		EndColumn   int `json:"endColumn,omitempty"`
	}
	type physical struct {
		ArtifactLocation artifact `json:"artifactLocation"`
		Region           *region  `json:"region,omitempty"`
	}
	type location struct {
		PhysicalLocation physical `json:"physicalLocation"`
	}
	type replacement struct {
		DeletedRegion   region `json:"deletedRegion"`
		InsertedContent text   `json:"insertedContent"`
	}
	type change struct {
		ArtifactLocation artifact      `json:"artifactLocation"`
		Replacements     []replacement `json:"replacements"`
	}
	type fix struct {
		Description     text     `json:"description"`
		ArtifactChanges []change `json:"artifactChanges"`
	}
	type result struct {
		RuleID     string         `json:"ruleId"`
		RuleIndex  int            `json:"ruleIndex"`
		Level      string         `json:"level"`
		Message    text           `json:"message"`
		Locations  []location     `json:"locations"`
		Fixes      []fix          `json:"fixes,omitempty"`
		Properties map[string]any `json:"properties,omitempty"`
	}
	rules := Rules()
	index := map[string]int{}
	var srules []sarifRule
	for i, ru := range rules {
		index[ru.ID] = i
		srules = append(srules, sarifRule{ID: ru.ID, Name: ru.Name, ShortDescription: text{ru.Summary},
			HelpURI: docsURL + "#" + strings.ToLower(ru.ID), DefaultConfiguration: map[string]string{"level": sarifLevel(ru.Severity)}})
	}
	results := []result{}
	for _, res := range r.Results {
		for _, f := range res.Findings {
			loc := physical{ArtifactLocation: sarifArtifactFor(res.Dir, f.File)}
			if f.Line > 0 {
				loc.Region = &region{StartLine: f.Line, StartColumn: f.Column}
			}
			msg := f.Message
			if f.Path != "" {
				msg = f.Path + ": " + msg
			}
			out := result{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity), Message: text{msg}, Locations: []location{{loc}}}
			if f.Path != "" {
				out.Properties = map[string]any{"jsonPath": f.Path}
			}
			if f.Fix != nil {
				fx := fix{Description: text{f.Fix.Description}}
				for _, e := range f.Fix.Edits {
					fx.ArtifactChanges = append(fx.ArtifactChanges, change{ArtifactLocation: sarifArtifactFor(res.Dir, e.File), Replacements: []replacement{{
						DeletedRegion:   region{StartLine: e.StartLine, StartColumn: e.StartColumn, EndLine: e.EndLine, EndColumn: e.EndColumn},
						InsertedContent: text{e.Text},
					}}})
				}
				out.Fixes = []fix{fx}
			}
			results = append(results, out)
		}
	}
	type driver struct {
		Name           string      `json:"name"`
		InformationURI string      `json:"informationUri"`
		Version        string      `json:"version"`
		Rules          []sarifRule `json:"rules"`
	}
	type run struct {
		Tool struct {
			Driver driver `json:"driver"`
		} `json:"tool"`
		ColumnKind         string                       `json:"columnKind"`
		OriginalURIBaseIDs map[string]map[string]string `json:"originalUriBaseIds"`
		Results            []result                     `json:"results"`
	}
	var rn run
	rn.Tool.Driver = driver{Name: "comfypod", InformationURI: "https://github.com/comfypod/comfypod", Version: toolVersion, Rules: srules}
	rn.ColumnKind = "unicodeCodePoints"
	rn.OriginalURIBaseIDs = map[string]map[string]string{"%SRCROOT%": {"uri": "./"}}
	rn.Results = results
	log := struct {
		Version string `json:"version"`
		Schema  string `json:"$schema"`
		Runs    []run  `json:"runs"`
	}{"2.1.0", "https://json.schemastore.org/sarif-2.1.0.json", []run{rn}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(log)
}

func sarifLevel(s Severity) string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "note"
}

// sarifArtifact is a SARIF artifactLocation.
type sarifArtifact struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

// sarifArtifactFor makes a relative URI reference for a package file;
// absolute paths become file:// URIs.
func sarifArtifactFor(dir, file string) sarifArtifact {
	p := filePath(dir, file)
	var out sarifArtifact
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	escaped := strings.Join(segs, "/")
	if file == "" {
		escaped += "/"
	}
	if path.IsAbs(p) {
		out.URI = "file://" + escaped
		return out
	}
	out.URI = strings.TrimPrefix(escaped, "./")
	out.URIBaseID = "%SRCROOT%"
	return out
}
