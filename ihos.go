// Package ihos holds the domain of the internet hospital platform: the types both
// services share, the error codes every layer speaks, and the identifiers and
// conventions that must agree on the appliance and the cloud.
//
// This package does no I/O and imports nothing else of the repository, so every
// other package can depend on it without cycles.
package ihos

// Version and Commit identify a build; `make build` sets them with -ldflags.
var (
	Version = "dev"
	Commit  = "unknown"
)

// Truncate returns s cut to at most n characters (runes), for values that must
// fit a column or a log line.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
