// Package bytesize writes byte counts for people, in the messages that tell
// a caller which size limit they crossed.
package bytesize

import "fmt"

// Decimal writes n in decimal units (1 MB = 1,000,000 bytes), as file sizes
// and the worker and manifest limits are given: "25.3 MB", "204.8 KB", "512 bytes".
func Decimal(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1000:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Binary writes n in the binary units RunPod's payload limits are set in
// (its "10 MB" is 10 × 2²⁰ bytes), with RunPod's labels: "10.0 MB",
// "1.5 KB", "512 bytes".
func Binary(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
