// Package bench holds the performance benchmarks of docs/benchmarks.md: the
// console list API over 100,000 staff under 200 concurrent clients, the
// appliance's idle memory, and its start-to-healthy time. They run only with
// -bench (make bench); plain go test compiles them and runs nothing.
package bench
