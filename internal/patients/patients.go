// Package patients declares patient accounts: the admin resource the cloud
// writes them through and the replicated entity that carries them to their
// hospital's appliance. The journeys (real-name verification, the mini-program
// login) build on it.
package patients

import (
	"context"
	"fmt"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/sync"
)

// Resource declares 患者账号.
func Resource() *admin.Resource {
	return &admin.Resource{
		Name: "patients", Title: "患者账号", Noun: "患者", Table: "patients",
		Perm: "patients", Display: "name", Sort: "-created_at", NoDelete: true,
		Fields: []admin.Field{
			{Name: "hospital_id", Label: "医院编号", Type: admin.Text, Required: true, Max: 36, Immutable: true, Filter: true, List: true},
			{Name: "name", Label: "姓名", Type: admin.Text, Required: true, Max: 50, Search: true, List: true},
			{Name: "gender", Label: "性别", Type: admin.Enum, Options: []admin.Option{{Value: "男", Label: "男"}, {Value: "女", Label: "女"}}, List: true},
			{Name: "birth_year", Label: "出生年份", Type: admin.Int, Min: 0, Max: 2100, List: true},
			{Name: "phone", Label: "手机号", Type: admin.Phone, Required: true, Sensitive: true, Filter: true, Search: true, List: true},
			{Name: "id_number", Label: "身份证号", Type: admin.IDNumber, Sensitive: true, Filter: true},
		},
		Validate: func(_ context.Context, rec, _ admin.Record) map[string]string {
			if y, _ := rec["birth_year"].(int64); y != 0 && (y < 1900 || int(y) > time.Now().In(ihos.Shanghai).Year()) {
				return map[string]string{"birth_year": fmt.Sprintf("年份应在 1900 到 %d 之间", time.Now().In(ihos.Shanghai).Year())}
			}
			if hosp, _ := rec["hospital_id"].(string); !ihos.ValidHospitalID(hosp) {
				return map[string]string{"hospital_id": "医院编号无效"}
			}
			return nil
		},
	}
}

// Replica declares patient accounts as the appliance shows them: read-only
// (the cloud owns them) and without the personal data, which stays sealed in
// the cloud (docs/decisions/0006).
func Replica() *admin.Resource {
	r := Resource()
	r.ReadOnly = true
	var fields []admin.Field
	for _, f := range r.Fields {
		if !f.Sensitive {
			fields = append(fields, f)
		}
	}
	r.Fields = fields
	return r
}

// Entity declares patient accounts as cloud-owned replicated data. The phone and
// ID number are sealed under the cloud's key and stay there until the journeys
// define how the hospital receives them (docs/decisions/0005).
func Entity() sync.Entity {
	return sync.Entity{Name: "patients", Table: "patients", Owner: sync.Cloud, Local: []string{"phone", "id_number"}}
}
