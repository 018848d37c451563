package hub

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity says how bad a finding is.
type Severity int

// The severities, mildest first. Errors fail `comfypod lint`; warnings fail
// it only with --strict.
const (
	Info Severity = iota
	Warning
	Error
)

// String returns info, warning or error.
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads info, warning or error.
func (s *Severity) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "info", "note":
		*s = Info
	case "warning", "warn":
		*s = Warning
	case "error":
		*s = Error
	default:
		return fmt.Errorf("unknown severity %q: want info, warning or error", b)
	}
	return nil
}

// Finding is one problem the linter found, located as precisely as it can be.
type Finding struct {
	// Rule is the rule's stable id ("RP302") and Name its readable slug
	// ("cuda-mismatch").
	Rule string `json:"rule"`
	Name string `json:"name"`
	// Severity is the rule's severity, or a milder one for a milder case.
	Severity Severity `json:"severity"`
	// File is the file, relative to the package folder with forward
	// slashes; "" for a finding about the package as a whole.
	File string `json:"file,omitempty"`
	// Line and Column are 1-based (columns count characters); 0 when the
	// finding is about a whole file.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Path is the JSON path of the value in a JSON file: config.gpuIds,
	// tests[2].timeout.
	Path string `json:"path,omitempty"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
	// Fix is the mechanical change that fixes the finding, when there is a
	// safe one.
	Fix *Fix `json:"-"`
}

// Fixable reports whether ApplyFixes can fix the finding.
func (f *Finding) Fixable() bool { return f.Fix != nil }

// String formats the finding as one line: file:line:col: severity: message
// [RP302 cuda-mismatch].
func (f Finding) String() string {
	var b strings.Builder
	if f.File != "" {
		b.WriteString(f.File)
		if f.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", f.Line, f.Column)
		}
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s: ", f.Severity)
	if f.Path != "" {
		b.WriteString(f.Path + ": ")
	}
	fmt.Fprintf(&b, "%s [%s %s]", f.Message, f.Rule, f.Name)
	return b.String()
}

// compareFindings orders findings by file, position and rule.
func compareFindings(a, b Finding) int {
	return cmp.Or(
		cmp.Compare(fileOrder(a.File), fileOrder(b.File)),
		cmp.Compare(a.File, b.File),
		cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Column, b.Column),
		cmp.Compare(a.Rule, b.Rule),
		cmp.Compare(a.Message, b.Message),
	)
}

// fileOrder lists package-wide findings first, then .runpod files.
func fileOrder(file string) int {
	switch {
	case file == "":
		return 0
	case strings.HasPrefix(file, ".runpod/"):
		return 1
	}
	return 2
}

// Result is what the linter found in one package.
type Result struct {
	// Dir is the package folder as given to the linter.
	Dir string `json:"dir"`
	// Findings are sorted by file and position.
	Findings []Finding `json:"findings"`
}

// Count returns the number of findings of severity s.
func (r *Result) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Fixable returns the number of findings ApplyFixes can fix.
func (r *Result) Fixable() int {
	n := 0
	for _, f := range r.Findings {
		if f.Fix != nil {
			n++
		}
	}
	return n
}

// Failed reports whether the result should fail a build: any error, or with
// strict any warning.
func (r *Result) Failed(strict bool) bool {
	return r.Count(Error) > 0 || strict && r.Count(Warning) > 0
}

func (r *Result) sort() { slices.SortStableFunc(r.Findings, compareFindings) }
