package masterdata_test

import (
	"context"
	"errors"
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

// TestSchedulingResources runs the console's three scheduling pages
// (在线问诊设置, 在线问诊排班管理, 放号规则设置) through the generic admin
// layer: their rules refuse bad input field by field, in Chinese.
func TestSchedulingResources(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		sealer, err := pii.LoadOrCreate(filepath.Join(t.TempDir(), "pii.key"))
		if err != nil {
			t.Fatal(err)
		}
		a := auth.New(db)
		store := admin.NewStore(db, sealer, a, masterdata.Resources()...)
		ctx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u", Username: "u", Role: auth.RoleHospitalAdmin})
		res := func(name string) *admin.Resource {
			r, err := store.Resource(name)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		create := func(name string, rec map[string]any) (admin.Record, error) {
			return store.Create(ctx, res(name), rec)
		}
		refused := func(err error, code, field, msg string) {
			t.Helper()
			var e *ihos.Error
			if !errors.As(err, &e) || e.Code != code || e.Fields[field] != msg {
				t.Fatalf("got %v (%+v), want %s %s=%q", err, e, code, field, msg)
			}
		}
		inst, err := create("institutions", map[string]any{"code": "H1", "name": "示例医院"})
		if err != nil {
			t.Fatal(err)
		}
		dept, err := create("departments", map[string]any{"institution_id": inst["id"], "code": "NK", "name": "内科", "category": "临床"})
		if err != nil {
			t.Fatal(err)
		}
		doc, err := create("staff", map[string]any{"institution_id": inst["id"], "department_id": dept["id"], "job_no": "D1", "name": "张三",
			"kind": "doctor", "title": "主任医师"})
		if err != nil {
			t.Fatal(err)
		}

		// 在线问诊设置: by title or by doctor, one row each.
		_, err = create("consultation_settings", map[string]any{"text_enabled": true, "text_fee": 2000, "text_minutes": 30})
		refused(err, ihos.EInvalid, "title", "请选择职称或医生")
		_, err = create("consultation_settings", map[string]any{"title": "主任医师", "staff_id": doc["id"]})
		refused(err, ihos.EInvalid, "staff_id", "职称与医生只能填写一项")
		_, err = create("consultation_settings", map[string]any{"title": "主任医师", "video_enabled": true, "video_fee": 5000})
		refused(err, ihos.EInvalid, "video_minutes", "开通视频问诊须填写时长")
		if _, err := create("consultation_settings", map[string]any{"title": "主任医师", "text_enabled": true, "text_fee": 2000, "text_minutes": 30}); err != nil {
			t.Fatal(err)
		}
		_, err = create("consultation_settings", map[string]any{"title": "主任医师"})
		refused(err, ihos.EConflict, "title", "职称已被使用")
		if _, err := create("consultation_settings", map[string]any{"staff_id": doc["id"], "voice_enabled": true, "voice_fee": 3000, "voice_minutes": 15}); err != nil {
			t.Fatal(err)
		}
		_, err = create("consultation_settings", map[string]any{"staff_id": doc["id"]})
		refused(err, ihos.EConflict, "staff_id", "医生已被使用")

		// 在线问诊排班管理.
		base := func(change map[string]any) map[string]any {
			rec := map[string]any{"staff_id": doc["id"], "visit_date": "2026-12-01", "start_time": "08:00", "end_time": "12:00", "visit_type": "text", "slot_minutes": 15}
			for k, v := range change {
				rec[k] = v
			}
			return rec
		}
		for _, c := range []struct {
			change     map[string]any
			field, msg string
		}{
			{map[string]any{"visit_date": "2026/12/01"}, "visit_date", "日期格式应为 2026-12-01"},
			{map[string]any{"start_time": "8点"}, "start_time", "时间格式应为 08:00"},
			{map[string]any{"end_time": "07:00"}, "end_time", "结束时间须晚于开始时间"},
			{map[string]any{"slot_minutes": 0}, "slot_minutes", "请填写每个号源时长或号源数"},
			{map[string]any{"slot_count": 10}, "slot_count", "每个号源时长与号源数只能填写一项"},
			{map[string]any{"slot_minutes": 0, "slot_count": 300}, "slot_count", "每个号源至少 1 分钟"},
			{map[string]any{"slot_minutes": 241}, "slot_minutes", "不能大于 240"},
			{map[string]any{"visit_type": "phone"}, "visit_type", ""},
		} {
			_, err := create("online_schedules", base(c.change))
			var e *ihos.Error
			if !errors.As(err, &e) || e.Code != ihos.EInvalid || e.Fields[c.field] == "" || c.msg != "" && e.Fields[c.field] != c.msg {
				t.Errorf("%v: got %v (%+v), want %s=%q", c.change, err, e, c.field, c.msg)
			}
		}
		sched, err := create("online_schedules", base(nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.SetEnabled(ctx, res("online_schedules"), sched["id"].(string), false); err != nil {
			t.Fatalf("disable a schedule: %v", err)
		}
		if _, err := create("online_schedules", base(map[string]any{"slot_minutes": 0, "slot_count": 8, "visit_type": "video"})); err != nil {
			t.Fatal(err)
		}

		// 放号规则设置: one default, one per department.
		_, err = create("release_rules", map[string]any{"days_ahead": 7, "release_time": "25:00", "quota": 1})
		refused(err, ihos.EInvalid, "release_time", "时间格式应为 08:00")
		_, err = create("release_rules", map[string]any{"days_ahead": 7, "release_time": "08:00", "quota": 0})
		if e, ok := err.(*ihos.Error); !ok || e.Fields["quota"] == "" {
			t.Fatalf("quota 0: %v", err)
		}
		if _, err := create("release_rules", map[string]any{"days_ahead": 7, "release_time": "08:00", "quota": 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := create("release_rules", map[string]any{"department_id": dept["id"], "days_ahead": 3, "release_time": "20:00", "quota": 2}); err != nil {
			t.Fatal(err)
		}
		_, err = create("release_rules", map[string]any{"department_id": dept["id"], "days_ahead": 1, "release_time": "07:00", "quota": 1})
		refused(err, ihos.EConflict, "department_id", "科室已被使用")

		for _, name := range []string{"consultation_settings", "online_schedules", "release_rules"} {
			page, err := store.List(ctx, res(name), admin.Query{})
			if err != nil || page.Total != 2 {
				t.Errorf("list %s: %v %+v", name, err, page)
			}
		}
	})
}
