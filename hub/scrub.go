package hub

import (
	"regexp"
	"strings"
)

// secretPattern matches tokens and keys that must not appear in findings:
// Hugging Face, OpenAI-style, GitHub, AWS, RunPod and JWT tokens, and the
// signature parts of presigned URLs.
var secretPattern = regexp.MustCompile(`\b(?:hf_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_\-]{8,}|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}|AKIA[0-9A-Z]{16}|rpa_[A-Za-z0-9]{8,}|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})` +
	`|(?i:(?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|sig|token|api_key|apikey|access_token)=)[^&\s"']+`)

// scrub hides secrets in text that goes into a finding.
func scrub(s string) string {
	return secretPattern.ReplaceAllStringFunc(s, func(m string) string {
		if i := strings.IndexByte(m, '='); i >= 0 && !strings.HasPrefix(m, "eyJ") {
			return m[:i+1] + "REDACTED"
		}
		return redact(m)
	})
}

// redact shows only the kind of a secret: its first three characters.
func redact(s string) string {
	r := []rune(s)
	if len(r) <= 3 {
		return "…"
	}
	return string(r[:3]) + "…(redacted)"
}

// looksSecret reports whether an environment variable name holds a secret:
// *TOKEN*, *KEY*, *SECRET*, *PASSWORD* as a word of the name, unless the name
// says it is public.
func looksSecret(name string) bool {
	up := strings.ToUpper(name)
	if strings.Contains(up, "PUBLIC") {
		return false
	}
	for _, w := range strings.FieldsFunc(up, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		switch w {
		case "TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "PASS", "APIKEY", "CREDENTIALS", "PAT":
			return true
		}
		if strings.HasSuffix(w, "TOKEN") || strings.HasSuffix(w, "SECRET") || strings.HasSuffix(w, "APIKEY") {
			return true
		}
	}
	return false
}

// looksLikeToken reports whether a literal value is a real-looking token.
func looksLikeToken(v string) bool { return secretPattern.MatchString(v) }

// placeholder reports whether a secret's value is an obvious placeholder,
// not a real secret.
func placeholder(v string) bool {
	low := strings.ToLower(strings.Trim(v, `"' `))
	if len(low) < 8 || strings.HasPrefix(low, "$") || strings.HasPrefix(low, "<") || strings.HasPrefix(low, "/") || strings.HasPrefix(low, "./") || strings.HasPrefix(low, "~") {
		// Too short for a real secret, a reference, or a path.
		return !looksLikeToken(v)
	}
	for _, p := range []string{"your", "here", "xxx", "changeme", "placeholder", "dummy", "example", "todo", "none", "null", "secret_here", "replace"} {
		if strings.Contains(low, p) {
			return true
		}
	}
	return false
}
