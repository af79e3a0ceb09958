package console

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/sqldb"
)

// What the hand-written report pages (支付订单查询, 医保运营统计, 线上就诊记录
// and the doctors' statistics) share: their filter forms read the query
// string, show it again, pass it on to the next page and to the downloads,
// and name the ids of the rows they list.

// FilterError is what a report page says about a filter it could not read:
// the messages of the fields at fault, in the order of their names.
func FilterError(err error) string {
	var e *ihos.Error
	if errors.As(err, &e) && len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var msgs []string
		for _, k := range keys {
			msgs = append(msgs, e.Fields[k])
		}
		return "查询条件有误：" + strings.Join(msgs, "；")
	}
	return ihos.ErrorMessage(err)
}

// FormValues are the values of the filter keys in q, trimmed, for the form
// to show again ("" for a key not given).
func FormValues(q url.Values, keys []string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		out[k] = strings.TrimSpace(q.Get(k))
	}
	return out
}

// Filters is the filter part of q: the keys given a value, trimmed. The
// page, the detail id and the flash are left behind, so links made from it
// start a new search.
func Filters(q url.Values, keys []string) url.Values {
	u := url.Values{}
	for _, k := range keys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			u.Set(k, v)
		}
	}
	return u
}

// Link is path with the query u (path alone when u is empty).
func Link(path string, u url.Values) string {
	if len(u) == 0 {
		return path
	}
	return path + "?" + u.Encode()
}

// PageLinks are the links to the previous and the next page of q at path
// ("" at either end).
func PageLinks(path string, q url.Values, page, pages int) (prev, next string) {
	link := func(p int) string {
		u := url.Values{}
		maps.Copy(u, q)
		u.Set("page", strconv.Itoa(p))
		return Link(path, u)
	}
	if page > 1 {
		prev = link(page - 1)
	}
	if page < pages {
		next = link(page + 1)
	}
	return prev, next
}

// Dates is the period [from, to) as the dates a form shows:
// "2024-01-01", "2024-01-31" for January (Beijing time).
func Dates(from, to time.Time) (string, string) {
	return from.In(ihos.Shanghai).Format(time.DateOnly), to.Add(-time.Nanosecond).In(ihos.Shanghai).Format(time.DateOnly)
}

// Labeled are the choices of a select: keys in their order, with labels.
func Labeled(keys []string, label func(string) string) []admin.Option {
	out := make([]admin.Option, len(keys))
	for i, k := range keys {
		out[i] = admin.Option{Value: k, Label: label(k)}
	}
	return out
}

// Options are the choices a query of (value, label) rows gives, e.g. the
// departments of a filter form.
func Options(ctx context.Context, db *sqldb.DB, query string, args ...any) ([]admin.Option, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []admin.Option
	for rows.Next() {
		var o admin.Option
		if err := rows.Scan(&o.Value, &o.Label); err != nil {
			return nil, ihos.Internal(err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

// nameTables are the tables Names may look in.
var nameTables = map[string]bool{"departments": true, "staff": true, "patients": true}

// Names maps the ids of records of table (departments, staff, patients) to
// their names, for the rows a report lists by id; ids not found are left
// out, deleted records are found.
func Names(ctx context.Context, db *sqldb.DB, table string, ids []string) (map[string]string, error) {
	if !nameTables[table] {
		return nil, ihos.Errorf(ihos.EInternal, "names: table %s", table)
	}
	out := map[string]string{}
	var want []any
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			want = append(want, id)
		}
	}
	for chunk := range slices.Chunk(want, 500) {
		rows, err := db.QueryContext(ctx, `SELECT id, name FROM `+table+` WHERE id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, chunk...)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, ihos.Internal(err)
			}
			out[id] = name
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, ihos.Internal(err)
		}
	}
	return out, nil
}
