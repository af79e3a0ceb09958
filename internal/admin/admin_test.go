package admin_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/masterdata"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

type fixture struct {
	db    *sqldb.DB
	store *admin.Store
	auth  *auth.Service
	inst  *admin.Resource
	dept  *admin.Resource
	staff *admin.Resource
	users *admin.Resource
}

func newFixture(t *testing.T, db *sqldb.DB) *fixture {
	t.Helper()
	sealer, err := pii.LoadOrCreate(filepath.Join(t.TempDir(), "pii.key"))
	if err != nil {
		t.Fatal(err)
	}
	a := auth.New(db)
	a.BcryptCost = 4
	res := append(masterdata.Resources(), a.UsersResource())
	s := admin.NewStore(db, sealer, a, res...)
	f := &fixture{db: db, store: s, auth: a}
	f.inst, _ = s.Resource("institutions")
	f.dept, _ = s.Resource("departments")
	f.staff, _ = s.Resource("staff")
	f.users, _ = s.Resource("users")
	return f
}

func as(role, dept string) context.Context {
	r, _ := auth.RoleByName(role)
	return ihos.WithActor(context.Background(), ihos.Actor{UserID: "u-" + role, Username: role, Role: role, DepartmentID: dept, Scoped: r.Scoped})
}

var sys = as(auth.RoleSysAdmin, "")

func must(t *testing.T) func(admin.Record, error) admin.Record {
	return func(rec admin.Record, err error) admin.Record {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return rec
	}
}

func wantCode(t *testing.T, err error, code string) *ihos.Error {
	t.Helper()
	var e *ihos.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	return e
}

func (f *fixture) seed(t *testing.T) (inst, dept admin.Record) {
	t.Helper()
	inst = must(t)(f.store.Create(sys, f.inst, map[string]any{"code": "H001", "name": "示例市第一人民医院", "grade": "三级甲等"}))
	dept = must(t)(f.store.Create(sys, f.dept, map[string]any{"institution_id": inst["id"], "code": "NK01", "name": "心血管内科", "category": "临床"}))
	return
}

func TestDepartmentLifecycle(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		inst, dept := f.seed(t)
		if dept["institution_id_name"] != "示例市第一人民医院" || dept["version"] != int64(1) || dept["enabled"] != true {
			t.Fatalf("created = %v", dept)
		}
		id := dept["id"].(string)

		// Invalid input names the fields in Chinese.
		_, err := f.store.Create(sys, f.dept, map[string]any{"code": "", "category": "不存在", "bogus": 1, "sort_order": "x"})
		e := wantCode(t, err, ihos.EInvalid)
		for _, k := range []string{"code", "name", "institution_id", "category", "bogus", "sort_order"} {
			if e.Fields[k] == "" {
				t.Errorf("no message for %s: %v", k, e.Fields)
			}
		}
		// A duplicate code conflicts.
		_, err = f.store.Create(sys, f.dept, map[string]any{"institution_id": inst["id"], "code": "NK01", "name": "重复", "category": "临床"})
		wantCode(t, err, ihos.EConflict)

		// Update with the right version, then a stale one.
		up := must(t)(f.store.Update(sys, f.dept, id, map[string]any{"version": 1, "name": "心内科", "online": true}))
		if up["name"] != "心内科" || up["online"] != true || up["version"] != int64(2) || up["code"] != "NK01" {
			t.Fatalf("updated = %v", up)
		}
		_, err = f.store.Update(sys, f.dept, id, map[string]any{"version": 1, "name": "又改"})
		wantCode(t, err, ihos.EConflict)
		_, err = f.store.Update(sys, f.dept, id, map[string]any{"name": "无版本"})
		wantCode(t, err, ihos.EInvalid)

		// Disable, find by search, and paging.
		dis := must(t)(f.store.SetEnabled(sys, f.dept, id, false))
		if dis["enabled"] != false {
			t.Fatal("not disabled")
		}
		page, err := f.store.List(sys, f.dept, admin.Query{Q: "心内", Filters: map[string]string{"enabled": "false"}})
		if err != nil || page.Total != 1 || page.Items[0]["id"] != id {
			t.Fatalf("search: %v %+v", err, page)
		}

		// A department with staff cannot be deleted.
		st := must(t)(f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": id, "job_no": "D0001", "name": "张伟", "kind": "doctor", "title": "主治医师"}))
		err = f.store.Delete(sys, f.dept, id)
		wantCode(t, err, ihos.EConflict)
		if err := f.store.Delete(sys, f.staff, st["id"].(string)); err != nil {
			t.Fatal(err)
		}
		if err := f.store.Delete(sys, f.dept, id); err != nil {
			t.Fatal(err)
		}
		_, err = f.store.Get(sys, f.dept, id)
		wantCode(t, err, ihos.ENotFound)
		_, err = f.store.Get(sys, f.dept, "no-such-id")
		wantCode(t, err, ihos.ENotFound)

		// Every change is in the audit log, with before and after, and the chain holds.
		entries, total, err := audit.List(context.Background(), db, audit.Filter{Resource: "departments", RecordID: id})
		if err != nil || total != 4 {
			t.Fatalf("audit entries = %d, %v", total, err)
		}
		if entries[0].Action != "delete" || entries[len(entries)-1].Action != "create" || entries[0].ActorName != "sysadmin" {
			t.Fatalf("audit order/actors wrong: %+v", entries[0])
		}
		upd := entries[2]
		if upd.Action != "update" || !strings.Contains(string(upd.Before), "心血管内科") || !strings.Contains(string(upd.After), "心内科") {
			t.Fatalf("update entry before/after: %s / %s", upd.Before, upd.After)
		}
		if bad, err := audit.Verify(context.Background(), db); err != nil || bad != 0 {
			t.Fatalf("audit chain broken at %d: %v", bad, err)
		}
	})
}

func TestStaffPersonalDataSealed(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		inst, dept := f.seed(t)
		st := must(t)(f.store.Create(sys, f.staff, map[string]any{
			"institution_id": inst["id"], "department_id": dept["id"], "job_no": "D0002", "name": "李娜", "kind": "doctor",
			"title": "副主任医师", "phone": "13812345678", "id_number": "11010519491231002X", "license_no": "110110000012345",
			"practice_since": 2005, "online": true,
		}))
		if st["phone"] != "138****5678" || st["id_number"] != "110105**********2X" {
			t.Fatalf("not masked: %v %v", st["phone"], st["id_number"])
		}
		var rawPhone, rawID string
		db.QueryRow(`SELECT phone, id_number FROM staff WHERE id = ?`, st["id"]).Scan(&rawPhone, &rawID)
		if strings.Contains(rawPhone, "13812345678") || strings.Contains(rawID, "11010519491231002X") || rawPhone == "" {
			t.Fatalf("stored in clear: %q %q", rawPhone, rawID)
		}
		// Exact match through the blind index, by filter and by q.
		for _, q := range []admin.Query{{Filters: map[string]string{"phone": "13812345678"}}, {Q: "13812345678"}} {
			page, err := f.store.List(sys, f.staff, q)
			if err != nil || page.Total != 1 {
				t.Fatalf("find by phone %+v: %v %+v", q, err, page)
			}
		}
		// Sending the masked value back keeps the real one; a same ID number elsewhere conflicts.
		up := must(t)(f.store.Update(sys, f.staff, st["id"].(string), map[string]any{"version": 1, "phone": "138****5678", "name": "李娜娜"}))
		if up["phone"] != "138****5678" {
			t.Fatalf("phone changed: %v", up["phone"])
		}
		_, err := f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": dept["id"], "job_no": "D0003",
			"name": "王五", "kind": "doctor", "id_number": "11010519491231002x"})
		e := wantCode(t, err, ihos.EConflict)
		if e.Fields["id_number"] == "" {
			t.Fatalf("conflict fields: %v", e.Fields)
		}
		// Validation of ID numbers and the online-qualification rules.
		_, err = f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": dept["id"], "job_no": "D0004",
			"name": "赵六", "kind": "nurse", "title": "主治医师", "id_number": "110105194912310021", "online": true, "phone": "12345"})
		e = wantCode(t, err, ihos.EInvalid)
		for _, k := range []string{"id_number", "phone"} {
			if e.Fields[k] == "" {
				t.Errorf("no message for %s: %v", k, e.Fields)
			}
		}
		_, err = f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": dept["id"], "job_no": "D0004",
			"name": "赵六", "kind": "nurse", "title": "主治医师", "online": true})
		e = wantCode(t, err, ihos.EInvalid)
		for _, k := range []string{"title", "license_no", "id_number"} {
			if e.Fields[k] == "" {
				t.Errorf("no message for %s: %v", k, e.Fields)
			}
		}
	})
}

func TestPermissionsAndScope(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		inst, dept := f.seed(t)
		other := must(t)(f.store.Create(sys, f.dept, map[string]any{"institution_id": inst["id"], "code": "WK01", "name": "普外科", "category": "临床"}))
		var otherStaff admin.Record
		for i, d := range []admin.Record{dept, dept, other} {
			otherStaff = must(t)(f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": d["id"], "job_no": fmt.Sprintf("S%03d", i), "name": fmt.Sprintf("人员%d", i), "kind": "nurse"}))
		}
		deptAdmin := as(auth.RoleDeptAdmin, dept["id"].(string))
		page, err := f.store.List(deptAdmin, f.staff, admin.Query{})
		if err != nil || page.Total != 2 {
			t.Fatalf("dept admin sees %v staff, want 2 (%v)", page, err)
		}
		_, err = f.store.Create(deptAdmin, f.staff, map[string]any{"institution_id": inst["id"], "department_id": other["id"], "job_no": "X1", "name": "越权", "kind": "nurse"})
		wantCode(t, err, ihos.EForbidden)
		must(t)(f.store.Create(deptAdmin, f.staff, map[string]any{"institution_id": inst["id"], "department_id": dept["id"], "job_no": "X2", "name": "本科室", "kind": "nurse"}))
		_, err = f.store.Create(deptAdmin, f.inst, map[string]any{"code": "H9", "name": "越权机构"})
		wantCode(t, err, ihos.EForbidden)
		// Refusals decided inside the write transaction are audited after it
		// (auditing inside would wait on SQLite's single writer for ever).
		_, err = f.store.SetEnabled(deptAdmin, f.staff, otherStaff["id"].(string), false)
		wantCode(t, err, ihos.EForbidden)
		_, err = f.store.Update(deptAdmin, f.staff, otherStaff["id"].(string), map[string]any{"version": 1, "name": "越权改名"})
		wantCode(t, err, ihos.EForbidden)
		wantCode(t, f.store.Delete(deptAdmin, f.staff, otherStaff["id"].(string)), ihos.EForbidden)

		auditor := as(auth.RoleAuditor, "")
		if _, err := f.store.List(auditor, f.staff, admin.Query{}); err != nil {
			t.Fatal(err)
		}
		_, err = f.store.SetEnabled(auditor, f.dept, dept["id"].(string), false)
		wantCode(t, err, ihos.EForbidden)
		_, err = f.store.List(as(auth.RoleHospitalAdmin, ""), f.users, admin.Query{})
		wantCode(t, err, ihos.EForbidden)
		_, err = f.store.List(context.Background(), f.staff, admin.Query{})
		wantCode(t, err, ihos.EUnauthorized)

		_, n, _ := audit.List(context.Background(), db, audit.Filter{Action: audit.ActionDenied})
		if n != 7 {
			t.Fatalf("denied actions audited: %d, want 7", n)
		}
	})
}

func TestListPagingSortAndBadInput(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		inst, dept := f.seed(t)
		err := db.Tx(context.Background(), func(tx *sql.Tx) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 45; i++ {
			must(t)(f.store.Create(sys, f.staff, map[string]any{"institution_id": inst["id"], "department_id": dept["id"],
				"job_no": fmt.Sprintf("N%04d", i), "name": fmt.Sprintf("护士%02d", i), "kind": "nurse", "title": "护师"}))
		}
		p3, err := f.store.List(sys, f.staff, admin.Query{Page: 3, PageSize: 20, Sort: "-job_no"})
		if err != nil || p3.Total != 45 || len(p3.Items) != 5 || p3.Items[4]["job_no"] != "N0000" {
			t.Fatalf("page 3: %v %+v", err, p3)
		}
		p, err := f.store.List(sys, f.staff, admin.Query{Q: "护士1", Filters: map[string]string{"title": "护师", "department_id": dept["id"].(string)}})
		if err != nil || p.Total != 10 || p.Items[0]["department_id_name"] != "心血管内科" {
			t.Fatalf("q+filters: %v %+v", err, p)
		}
		// Wildcards in q are literal.
		p, _ = f.store.List(sys, f.staff, admin.Query{Q: "%"})
		if p.Total != 0 {
			t.Fatalf("%% matched %d", p.Total)
		}
		_, err = f.store.List(sys, f.staff, admin.Query{Sort: "intro", PageSize: 1000, Filters: map[string]string{"intro": "x", "kind": "astronaut"}})
		e := wantCode(t, err, ihos.EInvalid)
		for _, k := range []string{"sort", "page_size", "intro", "kind"} {
			if e.Fields[k] == "" {
				t.Errorf("no message for %s: %v", k, e.Fields)
			}
		}
	})
}

func TestConsoleUsersResource(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		_, dept := f.seed(t)
		_, err := f.store.Create(sys, f.users, map[string]any{"username": "weak", "display_name": "弱密码", "role": "auditor", "password": "123"})
		e := wantCode(t, err, ihos.EInvalid)
		if e.Fields["password"] == "" {
			t.Fatal("weak password accepted")
		}
		_, err = f.store.Create(sys, f.users, map[string]any{"username": "da", "display_name": "科管", "role": "dept_admin", "password": "abcdef12345"})
		wantCode(t, err, ihos.EInvalid)
		u := must(t)(f.store.Create(sys, f.users, map[string]any{"username": "da", "display_name": "科管", "role": "dept_admin",
			"department_id": dept["id"], "password": "abcdef12345"}))
		if _, ok := u["password"]; ok {
			t.Fatal("password returned")
		}
		sess, err := f.auth.Login(context.Background(), "da", "abcdef12345", "127.0.0.1", "test")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.store.Update(sys, f.users, u["id"].(string), map[string]any{"version": 1, "username": "renamed"})
		wantCode(t, err, ihos.EInvalid)
		must(t)(f.store.SetEnabled(sys, f.users, u["id"].(string), false))
		if _, err := f.auth.Lookup(context.Background(), sess.Token); err == nil {
			t.Fatal("session of a disabled user still valid")
		}
	})
}
