package hub

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCleanPackageHasNoFindings(t *testing.T) {
	t.Parallel()
	res := lintFS(t, readTree(t, cleanPackage))
	for _, f := range res.Findings {
		t.Errorf("clean package: %s", f)
	}
}

// TestRuleFixtures runs every rule's fixture: the rule must fire in the
// failing package (at the wanted places) and stay quiet in the passing one.
func TestRuleFixtures(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/rules/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	byRule := map[string][]string{}
	for _, f := range files {
		id, _, _ := strings.Cut(filepath.Base(f), "-")
		byRule[id] = append(byRule[id], f)
	}
	for _, r := range Rules() {
		if len(byRule[r.ID]) == 0 {
			t.Errorf("rule %s (%s) has no fixture testdata/rules/%s-*.txtar", r.ID, r.Name, r.ID)
		}
		for _, file := range byRule[r.ID] {
			t.Run(filepath.Base(file), func(t *testing.T) {
				t.Parallel()
				if !strings.HasPrefix(filepath.Base(file), r.ID+"-"+r.Name) {
					t.Errorf("fixture %s: name it %s-%s[-case].txtar", file, r.ID, r.Name)
				}
				fx := loadFixture(t, file)
				fail := lintFS(t, fx.fail)
				got := findingsOf(fail, r.ID)
				if len(got) == 0 {
					t.Fatalf("%s did not fire in the failing package (%s); findings: %v", r.ID, fx.desc, fail.Findings)
				}
				locs := locations(got)
				for _, w := range fx.wants {
					if !slices.Contains(locs, w) {
						t.Errorf("want %s at %s; got %v", r.ID, w, got)
					}
				}
				for _, f := range got {
					if f.Message == "" || f.Name != r.Name {
						t.Errorf("bad finding %+v", f)
					}
				}
				pass := lintFS(t, fx.pass)
				if bad := findingsOf(pass, r.ID); len(bad) > 0 {
					t.Errorf("%s fired in the passing package: %v", r.ID, bad)
				}
				if r.Fixable {
					checkFixRemoves(t, fx, r.ID)
				}
			})
		}
	}
	for id := range byRule {
		if _, ok := newRuleIndex()[id]; !ok {
			t.Errorf("fixture for unknown rule %s", id)
		}
	}
}

// checkFixRemoves applies the fixes of a fixable rule's findings to a copy
// of the failing package and checks that the rule no longer fires.
func checkFixRemoves(t *testing.T, fx *fixture, rule string) {
	t.Helper()
	dir := writeTree(t, fx.fail)
	l, _ := New(nil)
	res, err := l.Lint(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var fixable []Finding
	for _, f := range findingsOf(res, rule) {
		if f.Fix == nil {
			t.Errorf("fixable rule without a fix: %s", f)
		}
		fixable = append(fixable, f)
	}
	fr, err := ApplyFixes(context.Background(), dir, fixable)
	if err != nil {
		t.Fatal(err)
	}
	if fr.Fixed != len(fixable) {
		t.Errorf("fixed %d of %d", fr.Fixed, len(fixable))
	}
	after, err := l.Lint(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if left := findingsOf(after, rule); len(left) > 0 {
		t.Errorf("after --fix %s still fires: %v", rule, left)
	}
	for _, f := range after.Findings {
		if f.Rule == ruleInvalidJSON {
			t.Errorf("the fix broke the JSON: %s", f)
		}
	}
	_ = os.RemoveAll(dir)
}

// TestDocsListEveryRule keeps docs/lint.md, the rule catalogue, in step with
// the code: every rule has a heading with its id, name and severity.
func TestDocsListEveryRule(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "docs", "lint.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, r := range Rules() {
		heading := "#### " + r.ID + " " + r.Name + " — " + r.Severity.String()
		if !strings.Contains(doc, heading) {
			t.Errorf("docs/lint.md has no heading %q", heading)
		}
	}
}
