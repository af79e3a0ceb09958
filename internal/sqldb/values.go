package sqldb

import (
	"database/sql"
	"time"

	"ihos"
)

// The column conventions of every store (DESIGN.md §6): times are text in
// UTC (ihos.FormatTime), and an optional value is NULL rather than "" where a
// column is unique or indexed. These helpers are the one place the row code
// of the workflow packages turns values into columns and back.

// Scanner is one row to scan: a *sql.Row or the current row of *sql.Rows, so
// one scan function reads a row fetched alone or in a list.
type Scanner interface{ Scan(dest ...any) error }

// Collect reads every row of a query with scan (which also labels the value
// for people), closing rows. The list is empty, never nil, when no row
// matches: it goes out as JSON []. Errors are internal errors.
func Collect[T any](rows *sql.Rows, err error, scan func(Scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

// NullString is s as a column value: NULL when empty.
func NullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// NullTime is t as a column value: NULL when zero, else ihos.FormatTime.
func NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ihos.FormatTime(t)
}

// ParseTime reads a time column written by FormatTime or NullTime: the zero
// time for NULL, "" or a value that does not parse (a row is still shown
// when one of its times is damaged).
func ParseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := ihos.ParseTime(s)
	return t
}
