package console

import (
	"context"
	"net/url"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

func TestReportQueries(t *testing.T) {
	keys := []string{"from", "to", "status"}
	q := url.Values{"from": {" 2025-03-01 "}, "status": {""}, "page": {"3"}, "id": {"x"}, "msg": {"saved"}}
	if got := FormValues(q, keys); got["from"] != "2025-03-01" || got["to"] != "" || len(got) != 3 {
		t.Errorf("FormValues %v", got)
	}
	f := Filters(q, keys)
	if got := f.Encode(); got != "from=2025-03-01" {
		t.Errorf("Filters %s", got)
	}
	if got := Link("/console/x/r", f); got != "/console/x/r?from=2025-03-01" {
		t.Errorf("Link %s", got)
	}
	if got := Link("/console/x/r", url.Values{}); got != "/console/x/r" {
		t.Errorf("Link without a query %s", got)
	}
	prev, next := PageLinks("/console/x/r", f, 2, 3)
	if prev != "/console/x/r?from=2025-03-01&page=1" || next != "/console/x/r?from=2025-03-01&page=3" {
		t.Errorf("PageLinks %s %s", prev, next)
	}
	if f.Get("page") != "" {
		t.Error("PageLinks changed the query it was given")
	}
	if prev, next := PageLinks("/p", f, 1, 1); prev != "" || next != "" {
		t.Errorf("one page: %q %q", prev, next)
	}
	from := time.Date(2025, 3, 1, 0, 0, 0, 0, ihos.Shanghai)
	if a, b := Dates(from, from.AddDate(0, 1, 0)); a != "2025-03-01" || b != "2025-03-31" {
		t.Errorf("Dates %s %s", a, b)
	}
	if got := FilterError(ihos.Invalid(map[string]string{"to": "结束日期不能早于开始日期", "from": "日期格式应为 YYYY-MM-DD"})); got != "查询条件有误：日期格式应为 YYYY-MM-DD；结束日期不能早于开始日期" {
		t.Errorf("FilterError %s", got)
	}
	if got := FilterError(ihos.Errorf(ihos.EInvalid, "统计区间最长 366 天")); got != "统计区间最长 366 天" {
		t.Errorf("FilterError without fields %s", got)
	}
	if got := Labeled([]string{"b", "a"}, func(k string) string { return k + "!" }); len(got) != 2 || got[0].Value != "b" || got[1].Label != "a!" {
		t.Errorf("Labeled %v", got)
	}
}

func TestReportNames(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		now := ihos.FormatTime(time.Now())
		for i, name := range []string{"内科", "儿科"} {
			if _, err := db.ExecContext(ctx, `INSERT INTO departments (id, institution_id, code, name, sort_order, created_at, updated_at) VALUES (?, 'inst', ?, ?, ?, ?, ?)`,
				"d"+string(rune('1'+i)), "C"+string(rune('1'+i)), name, 2-i, now, now); err != nil {
				t.Fatal(err)
			}
		}
		names, err := Names(ctx, db, "departments", []string{"d1", "d2", "d1", "", "gone"})
		if err != nil || len(names) != 2 || names["d1"] != "内科" || names["d2"] != "儿科" {
			t.Errorf("Names %v %v", names, err)
		}
		if _, err := Names(ctx, db, "audit_log", []string{"x"}); ihos.ErrorCode(err) != ihos.EInternal {
			t.Errorf("a table Names may not read: %v", err)
		}
		opts, err := Options(ctx, db, `SELECT id, name FROM departments ORDER BY sort_order`)
		if err != nil || len(opts) != 2 || opts[0].Value != "d2" || opts[1].Label != "内科" {
			t.Errorf("Options %v %v", opts, err)
		}
	})
}
