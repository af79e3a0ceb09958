package masterdata_test

import (
	"context"
	"path/filepath"
	"testing"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/masterdata"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// A department's online visits are follow-up only unless the hospital says
// otherwise (a pilot): a new department leaving the setting out has it on,
// and the console turns it off and on like any field.
func TestDepartmentFollowUpOnlyDefaultsOn(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		sealer, err := pii.LoadOrCreate(filepath.Join(t.TempDir(), "pii.key"))
		if err != nil {
			t.Fatal(err)
		}
		store := admin.NewStore(db, sealer, auth.New(db), masterdata.Resources()...)
		ctx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u", Username: "u", Role: auth.RoleHospitalAdmin})
		insts, _ := store.Resource("institutions")
		depts, _ := store.Resource("departments")
		inst, err := store.Create(ctx, insts, map[string]any{"code": "H1", "name": "示例医院"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := store.Create(ctx, depts, map[string]any{"institution_id": inst["id"], "code": "NK", "name": "内科", "category": "临床"})
		if err != nil || d["online_follow_up_only"] != true {
			t.Fatalf("new department: %v %v", d["online_follow_up_only"], err)
		}
		pilot, err := store.Create(ctx, depts, map[string]any{"institution_id": inst["id"], "code": "PF", "name": "皮肤科", "category": "临床",
			"online_follow_up_only": false})
		if err != nil || pilot["online_follow_up_only"] != false {
			t.Fatalf("pilot department: %v %v", pilot["online_follow_up_only"], err)
		}
		// An update leaving the field out keeps it.
		d, err = store.Update(ctx, depts, d["id"].(string), map[string]any{"location": "门诊楼 2 层", "version": d["version"]})
		if err != nil || d["online_follow_up_only"] != true {
			t.Fatalf("after an update: %v %v", d["online_follow_up_only"], err)
		}
		var only int
		if err := db.QueryRowContext(ctx, `SELECT online_follow_up_only FROM departments WHERE id = ?`, pilot["id"]).Scan(&only); err != nil || only != 0 {
			t.Fatalf("stored %d %v", only, err)
		}
	})
}
