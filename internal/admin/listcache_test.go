package admin_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// listPage is a list API answer.
type listPage struct {
	Items []admin.Record `json:"items"`
	Total int            `json:"total"`
}

// apiGet sends GET /api/admin/{resource}?q as the actor in ctx through the
// store's routes and returns the status and decoded page.
func apiGet(t *testing.T, s *admin.Store, ctx context.Context, resource string, q url.Values) (int, listPage) {
	t.Helper()
	mux := http.NewServeMux()
	s.Routes(mux, "/api/admin")
	req := httptest.NewRequest(http.MethodGet, "/api/admin/"+resource+"?"+q.Encode(), nil).WithContext(ctx)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	var p listPage
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("decode %s: %v", w.Body, err)
		}
	}
	return w.Code, p
}

// names lists the names on a page, in order.
func names(p listPage) []string {
	var n []string
	for _, it := range p.Items {
		n = append(n, fmt.Sprint(it["name"]))
	}
	return n
}

// TestListCacheSeesEveryWrite checks that a cached list page answers again only
// while nothing was written, and reflects every kind of write at once: the
// store's create, update, enable/disable and delete, and a direct DB.Tx write as
// sync's apply makes. A write made outside DB.Tx (which the invariant forbids)
// is not seen, which shows the page really comes from the cache.
func TestListCacheSeesEveryWrite(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.store.ListCacheBytes = admin.DefaultListCacheBytes // off by default on MySQL
		inst, dept := f.seed(t)
		q := url.Values{"department_id": {dept["id"].(string)}, "page_size": {"20"}}
		list := func() listPage {
			t.Helper()
			code, p := apiGet(t, f.store, sys, "staff", q)
			if code != http.StatusOK {
				t.Fatalf("list: %d", code)
			}
			return p
		}
		want := func(p listPage, total int, first string) {
			t.Helper()
			if p.Total != total || len(p.Items) != total || (total > 0 && p.Items[0]["name"] != first) {
				t.Fatalf("got total %d, names %v; want %d starting with %q", p.Total, names(p), total, first)
			}
		}
		want(list(), 0, "")

		a := must(t)(f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": dept["id"],
			"job_no": "S001", "name": "张三", "kind": "nurse"}))
		want(list(), 1, "张三")

		// Served from the cache: a write that bypasses DB.Tx is not seen ...
		if _, err := db.DB.ExecContext(ctx, `UPDATE staff SET name = '绕过' WHERE id = ?`, a["id"]); err != nil {
			t.Fatal(err)
		}
		want(list(), 1, "张三")
		// ... until any write through DB.Tx, even one to another table.
		must(t)(f.store.Create(sys, f.inst, map[string]any{"code": "H002", "name": "分院"}))
		want(list(), 1, "绕过")

		a = must(t)(f.store.Update(sys, f.staff, a["id"].(string), map[string]any{"version": a["version"], "name": "张三丰"}))
		want(list(), 1, "张三丰")

		b := must(t)(f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": dept["id"],
			"job_no": "S000", "name": "李四", "kind": "doctor"}))
		want(list(), 2, "李四")
		q.Set("enabled", "true")
		want(list(), 2, "李四")
		must(t)(f.store.SetEnabled(sys, f.staff, b["id"].(string), false))
		want(list(), 1, "张三丰")
		must(t)(f.store.SetEnabled(sys, f.staff, b["id"].(string), true))
		want(list(), 2, "李四")
		q.Del("enabled")

		if err := f.store.Delete(sys, f.staff, b["id"].(string)); err != nil {
			t.Fatal(err)
		}
		want(list(), 1, "张三丰")

		// A sync-style apply: a row written by direct SQL inside DB.Tx.
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE staff SET name = ?, version = version + 1 WHERE id = ?`, "王五", a["id"])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want(list(), 1, "王五")

		// The store's own List (pages, other callers) keeps the filter totals
		// by generation too.
		p, err := f.store.List(sys, f.staff, admin.Query{Filters: map[string]string{"department_id": dept["id"].(string)}})
		if err != nil || p.Total != 1 {
			t.Fatalf("List: %v %+v", err, p)
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE staff SET deleted_at = updated_at WHERE id = ?`, a["id"])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if p, err = f.store.List(sys, f.staff, admin.Query{Filters: map[string]string{"department_id": dept["id"].(string)}}); err != nil || p.Total != 0 {
			t.Fatalf("List after a tombstone: %v %+v", err, p)
		}
		want(list(), 0, "")
	})
}

// TestListCacheScope checks that department-scoped actors never see a page
// cached for another scope, whichever asks first.
func TestListCacheScope(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		f.store.ListCacheBytes = admin.DefaultListCacheBytes
		inst, dept := f.seed(t)
		other := must(t)(f.store.Create(sys, f.dept, map[string]any{"institution_id": inst["id"], "code": "WK01", "name": "普外科", "category": "临床"}))
		for i, d := range []admin.Record{dept, dept, other} {
			must(t)(f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": d["id"],
				"job_no": fmt.Sprintf("S%03d", i), "name": fmt.Sprintf("人员%d", i), "kind": "nurse"}))
		}
		mine := as(auth.RoleDeptAdmin, dept["id"].(string))
		theirs := as(auth.RoleDeptAdmin, other["id"].(string))
		none := as(auth.RoleDeptAdmin, "")
		for _, q := range []url.Values{{}, {"q": {"人员"}}, {"kind": {"nurse"}, "page": {"1"}}} {
			for round := range 2 { // the second round is served from the cache
				for _, c := range []struct {
					name  string
					ctx   context.Context
					total int
				}{{"all", sys, 3}, {"mine", mine, 2}, {"theirs", theirs, 1}, {"none", none, 0}, {"auditor", as(auth.RoleAuditor, ""), 3}} {
					code, p := apiGet(t, f.store, c.ctx, "staff", q)
					if code != http.StatusOK || p.Total != c.total || len(p.Items) != c.total {
						t.Fatalf("round %d, %s, %v: %d, total %d, %v; want %d", round, c.name, q, code, p.Total, names(p), c.total)
					}
				}
			}
		}
		// Asking for the other department explicitly does not escape the scope.
		code, p := apiGet(t, f.store, mine, "staff", url.Values{"department_id": {other["id"].(string)}})
		if code != http.StatusOK || p.Total != 0 {
			t.Fatalf("scoped filter for another department: %d %+v", code, p)
		}
	})
}

// denySwitch is an Authorizer that defers to auth until deny is set, then
// refuses everything and audits the refusal.
type denySwitch struct {
	*auth.Service
	db   *sqldb.DB
	deny atomic.Bool
}

func (d *denySwitch) Authorize(ctx context.Context, perm, dept string) error {
	if d.deny.Load() {
		audit.Record(ctx, d.db, audit.Entry{Action: audit.ActionDenied, Summary: "无权限：" + perm})
		return ihos.Errorf(ihos.EForbidden, "您没有执行此操作的权限")
	}
	return d.Service.Authorize(ctx, perm, dept)
}

// TestListCacheStillAuthorizes checks that a cached page never answers a
// request that authorization refuses, and that every refusal is audited.
func TestListCacheStillAuthorizes(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		f.store.ListCacheBytes = admin.DefaultListCacheBytes
		f.seed(t)
		denied := func() int {
			_, n, err := audit.List(context.Background(), db, audit.Filter{Action: audit.ActionDenied})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		// A page of console users is cached for the system administrator; a
		// hospital administrator, who may not read users, is still refused.
		for range 2 {
			if code, p := apiGet(t, f.store, sys, "users", url.Values{}); code != http.StatusOK || p.Total != 0 {
				t.Fatalf("sysadmin: %d %+v", code, p)
			}
		}
		for i := 1; i <= 2; i++ {
			if code, _ := apiGet(t, f.store, as(auth.RoleHospitalAdmin, ""), "users", url.Values{}); code != http.StatusForbidden {
				t.Fatalf("hospital admin: %d, want 403", code)
			}
			if n := denied(); n != i {
				t.Fatalf("denials audited: %d, want %d", n, i)
			}
		}
		if code, _ := apiGet(t, f.store, context.Background(), "users", url.Values{}); code != http.StatusUnauthorized {
			t.Fatalf("anonymous: %d, want 401", code)
		}

		// The same actor and the same query, with the page in the cache: once
		// authorization refuses, so does the API.
		sw := &denySwitch{Service: f.auth, db: db}
		s := admin.NewStore(db, f.store.Sealer, sw, f.store.Resources()...)
		s.ListCacheBytes = admin.DefaultListCacheBytes
		q := url.Values{"page": {"1"}}
		for range 2 {
			if code, p := apiGet(t, s, sys, "departments", q); code != http.StatusOK || p.Total != 1 {
				t.Fatalf("before: %d %+v", code, p)
			}
		}
		sw.deny.Store(true)
		before := denied()
		if code, _ := apiGet(t, s, sys, "departments", q); code != http.StatusForbidden {
			t.Fatalf("after the switch: %d, want 403", code)
		}
		if n := denied(); n != before+1 {
			t.Fatalf("denials audited: %d, want %d", n, before+1)
		}
	})
}
