package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// pkgFiles are the files of a package the linter looks at, found the way the
// Hub finds them: .runpod/ first, then the package root.
type pkgFiles struct {
	rootNames   []string // names at the package root
	runpodNames []string // names in .runpod/

	// hubDir is where hub.json was found: ".runpod", "runpod" or "" (root).
	hubDir  string
	hubPath string
	hubData []byte

	testsPath string
	testsData []byte
	// testsDisabled are renamed tests files in hubDir.
	testsDisabled []string
	// strays are hub.json/tests.json copies the Hub ignores.
	strays []string

	dockerPath string
	dockerData []byte
	// dockerOthers are Dockerfile.* variants, named when Dockerfile is missing.
	dockerOthers []string

	handlerPath string
	handlerData []byte
	// handlerLooked are the places searched for handler.py.
	handlerLooked []string
	// handlerElsewhere is a handler found outside root and .runpod/.
	handlerElsewhere string
	// handlerDangling is set when handler.py is a symlink to nothing.
	handlerDangling, handlerTarget string

	readmePath string

	configData []byte

	// workflows are JSON files that may be ComfyUI workflows.
	workflows []string
	// manifestPath is the package manifest, if any.
	manifestPath string
	manifestData []byte

	// scripts are text files scanned for network volume paths.
	scripts []string
}

// ManifestFile is where a package keeps its manifest (see docs/manifest.md),
// relative to the package folder.
const ManifestFile = "comfypod.json"

// disabledTestsName reports whether a file name in .runpod/ is a renamed
// tests file: tests_.json, tests_json, tests_deactivated.json, _tests.json,
// test.json, tests.json.bak …
func disabledTestsName(name string) bool {
	n := strings.ToLower(name)
	if n == "tests.json" || strings.Contains(n, "input") {
		return false
	}
	trimmed := strings.TrimLeft(n, "_.-")
	return strings.HasPrefix(trimmed, "test") && (strings.Contains(n, "json") || strings.HasSuffix(n, "tests"))
}

func discover(ctx context.Context, fsys fs.FS) (*pkgFiles, error) {
	root, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	p := &pkgFiles{}
	for _, e := range root {
		p.rootNames = append(p.rootNames, e.Name())
	}
	if es, err := fs.ReadDir(fsys, ".runpod"); err == nil {
		for _, e := range es {
			p.runpodNames = append(p.runpodNames, e.Name())
		}
	} else if !errors.Is(err, fs.ErrNotExist) && !isNotDir(err) {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return readFile(fsys, name)
	}
	exists := func(name string) bool {
		st, err := fs.Stat(fsys, name)
		return err == nil && !st.IsDir()
	}

	// hub.json: .runpod/, else runpod/ (no dot), else the root.
	for _, dir := range []string{".runpod", "runpod", ""} {
		name := path.Join(dir, "hub.json")
		if !exists(name) {
			continue
		}
		if p.hubPath == "" {
			p.hubDir, p.hubPath = dir, name
			if p.hubData, err = read(name); err != nil {
				return nil, err
			}
		} else {
			p.strays = append(p.strays, name)
		}
	}
	// tests.json: beside hub.json; without a hub, .runpod/ first.
	testDirs := []string{".runpod", "runpod", ""}
	if p.hubPath != "" {
		testDirs = []string{p.hubDir}
	}
	for _, dir := range testDirs {
		name := path.Join(dir, "tests.json")
		if exists(name) {
			p.testsPath = name
			if p.testsData, err = read(name); err != nil {
				return nil, err
			}
			break
		}
	}
	for _, dir := range []string{".runpod", "runpod", ""} {
		name := path.Join(dir, "tests.json")
		if name != p.testsPath && exists(name) && dir != p.hubDir {
			p.strays = append(p.strays, name)
		}
	}
	if p.testsPath == "" {
		dirs := []string{".runpod"}
		if p.hubPath != "" && p.hubDir != ".runpod" {
			dirs = append(dirs, p.hubDir)
		}
		for _, dir := range dirs {
			es, err := fs.ReadDir(fsys, cmpOr(dir, "."))
			if err != nil {
				continue
			}
			for _, e := range es {
				if !e.IsDir() && disabledTestsName(e.Name()) {
					p.testsDisabled = append(p.testsDisabled, path.Join(dir, e.Name()))
				}
			}
		}
		if len(p.testsDisabled) > 0 {
			// Lint the disabled file as the tests: they must pass once
			// it is renamed back. Prefer the usual renames.
			slices.SortStableFunc(p.testsDisabled, func(a, b string) int { return len(a) - len(b) })
			p.testsPath = p.testsDisabled[0]
			if p.testsData, err = read(p.testsPath); err != nil {
				return nil, err
			}
		}
	}

	// Dockerfile, handler.py, README.md: .runpod/ takes precedence.
	for _, name := range []string{".runpod/Dockerfile", "Dockerfile"} {
		if exists(name) {
			p.dockerPath = name
			if p.dockerData, err = read(name); err != nil {
				return nil, err
			}
			break
		}
	}
	if p.dockerPath == "" {
		for _, n := range append(slices.Clone(p.runpodNames), p.rootNames...) {
			if low := strings.ToLower(n); strings.HasPrefix(low, "dockerfile") || strings.HasSuffix(low, ".dockerfile") {
				p.dockerOthers = append(p.dockerOthers, n)
			}
		}
	}
	p.handlerLooked = []string{".runpod/handler.py", "handler.py"}
	for _, name := range p.handlerLooked {
		if exists(name) {
			p.handlerPath = name
			if p.handlerData, err = read(name); err != nil {
				return nil, err
			}
			break
		}
		if target, ok := danglingLink(fsys, name); ok && p.handlerDangling == "" {
			p.handlerDangling, p.handlerTarget = name, target
		}
	}
	if p.handlerPath == "" {
		others := []string{"src/handler.py", "src/rp_handler.py", "rp_handler.py", ".runpod/src/handler.py", "runpod_handler.py", "app/handler.py"}
		p.handlerLooked = append(p.handlerLooked, others...)
		for _, name := range others {
			if exists(name) {
				p.handlerElsewhere = name
				break
			}
		}
	}
	for _, dir := range []string{".runpod", ""} {
		names := p.rootNames
		if dir == ".runpod" {
			names = p.runpodNames
		}
		for _, n := range names {
			if strings.EqualFold(n, "README.md") && exists(path.Join(dir, n)) {
				p.readmePath = path.Join(dir, n)
				break
			}
		}
		if p.readmePath != "" {
			break
		}
	}

	if p.configData, err = read(ConfigFile); err != nil {
		return nil, err
	}
	if p.manifestData, err = read(ManifestFile); err != nil {
		return nil, err
	}
	if p.manifestData != nil {
		p.manifestPath = ManifestFile
	}

	// Workflow candidates: JSON files at the root and in workflow folders.
	skip := func(name string) bool {
		base := strings.ToLower(path.Base(name))
		return base == "hub.json" || base == "tests.json" || strings.Contains(base, "test_input") || base == "package.json" ||
			base == "package-lock.json" || base == "tsconfig.json" || base == ConfigFile || name == ManifestFile || disabledTestsName(base)
	}
	for _, n := range p.rootNames {
		if strings.HasSuffix(strings.ToLower(n), ".json") && !skip(n) && exists(n) {
			p.workflows = append(p.workflows, n)
		}
	}
	for _, dir := range []string{"workflows", "workflow"} {
		_ = fs.WalkDir(fsys, dir, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return fs.SkipDir
			}
			if d.IsDir() && strings.Count(name, "/") > 2 {
				return fs.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(strings.ToLower(name), ".json") && !skip(name) {
				p.workflows = append(p.workflows, name)
			}
			return nil
		})
	}
	// Scripts and configs that may name network volume paths.
	for _, dir := range []string{"", ".runpod", "src", "scripts"} {
		es, err := fs.ReadDir(fsys, cmpOr(dir, "."))
		if err != nil {
			continue
		}
		for _, e := range es {
			n := strings.ToLower(e.Name())
			if !e.IsDir() && (strings.HasSuffix(n, ".sh") || strings.HasSuffix(n, ".py") || strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				p.scripts = append(p.scripts, path.Join(dir, e.Name()))
			}
		}
	}
	return p, nil
}

func cmpOr(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

func isNotDir(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not a directory")
}

// danglingLink reports whether name is a symlink whose target is missing.
func danglingLink(fsys fs.FS, name string) (string, bool) {
	rl, ok := fsys.(fs.ReadLinkFS)
	if !ok {
		return "", false
	}
	st, err := rl.Lstat(name)
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		return "", false
	}
	target, err := rl.ReadLink(name)
	if err != nil {
		return "", false
	}
	if _, err := fs.Stat(fsys, name); err == nil {
		return "", false
	}
	return target, true
}

// checkFiles reports missing, misplaced and disabled package files.
func (c *pkgCtx) checkFiles() {
	p := c.files
	switch {
	case p.hubPath == "":
		c.atFile("", 0, 0, ruleHubMissing, "no .runpod/hub.json: the Hub lists a package from .runpod/hub.json; create it (comfypod init writes one)")
	case p.hubDir == "runpod":
		c.atFile(p.hubPath, 0, 0, ruleRunpodDir, "hub.json is in runpod/ (no dot), where the Hub does not look; rename the folder to .runpod/")
	case p.hubDir == "":
		c.atFile(p.hubPath, 0, 0, ruleRunpodDir, "hub.json is at the package root, where the Hub does not look; move it to .runpod/hub.json")
	}
	for _, s := range p.strays {
		c.atFile(s, 0, 0, ruleStrayCopy, "the Hub reads only .runpod/%s and ignores this copy; delete it, or keep the two identical", path.Base(s))
	}
	dir := cmpOr(p.hubDir, ".runpod")
	if p.hubDir == "" && p.hubPath != "" {
		dir = "the package root"
	}
	switch {
	case len(p.testsDisabled) > 0:
		for _, t := range p.testsDisabled {
			what := "renamed"
			if strings.EqualFold(path.Base(t), "test.json") {
				what = "misnamed"
			}
			c.atFile(t, 0, 0, ruleTestsDisabled, "the tests file is %s, so the Hub runs no tests and a release is not checked; "+
				"rename it to %s once the tests pass (this file is linted as if it were tests.json)", what, path.Join(cmpOr(p.hubDir, ".runpod"), "tests.json"))
		}
	case p.testsPath == "":
		c.atFile("", 0, 0, ruleTestsMissing, "no tests.json in %s: Hub releases need .runpod/tests.json; add at least one test "+
			"with a real input and a timeout long enough to load the model", dir)
	}

	if p.dockerPath == "" {
		msg := "no Dockerfile in .runpod/ or the package root: the Hub builds the image from it"
		if len(p.dockerOthers) > 0 {
			msg += fmt.Sprintf("; found %s, but the Hub builds only a file named Dockerfile", strings.Join(p.dockerOthers, ", "))
		}
		c.atFile("", 0, 0, ruleDockerMissing, "%s", msg)
	}
	if p.handlerPath == "" && !c.runsComfypodWorker() {
		switch {
		case p.handlerDangling != "":
			c.atFile(p.handlerDangling, 0, 0, ruleHandlerMissing, "handler.py is a symbolic link to %s, which does not exist; point it at the real handler or copy the file", p.handlerTarget)
		case p.handlerElsewhere != "":
			f := c.atFile("", 0, 0, ruleHandlerMissing, "no handler.py in .runpod/ or the package root; found %s. The Hub's guide asks for handler.py at the root or in .runpod/, "+
				"although official workers with src/handler.py are accepted; make sure the Dockerfile starts it", p.handlerElsewhere)
			f.Severity = Info
		default:
			c.atFile("", 0, 0, ruleHandlerMissing, "no handler.py in .runpod/ or the package root (looked in %s); the Hub's guide asks for one there. "+
				"Ignore this if the Dockerfile starts a handler under another name", strings.Join(p.handlerLooked, ", "))
		}
	}
	if p.readmePath == "" {
		c.atFile("", 0, 0, ruleReadmeMissing, "no README.md in .runpod/ or the package root: the Hub shows it as the listing's page; add one that says what the endpoint does and what input it takes")
	}
}
