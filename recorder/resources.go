package recorder

import "ihos/internal/admin"

// Resources declares the recorders issued to staff, managed through the
// generic resource layer: an imported clip is attached to the nurse its
// recorder is issued to.
func Resources() []*admin.Resource {
	return []*admin.Resource{{
		Name: "recorder_devices", Title: "工作记录仪登记", Noun: "记录仪", Table: "recorder_devices",
		Perm: "recorder", Display: "serial", Sort: "serial", NoDelete: true,
		Fields: []admin.Field{
			{Name: "serial", Label: "设备编号", Type: admin.Text, Required: true, Max: 64, Unique: true, Immutable: true, Search: true, Filter: true, List: true, Sort: true,
				Help: "与录像文件名中的设备编号一致，例如 DSJ-A1-0007"},
			{Name: "name", Label: "名称", Type: admin.Text, Max: 100, Search: true, List: true},
			{Name: "model", Label: "型号", Type: admin.Text, Max: 100, List: true},
			{Name: "staff_id", Label: "使用护士", Type: admin.Ref, Ref: "staff", Filter: true, List: true,
				Help: "导入的录像归属到该护士；更换使用人后，之后导入的录像归属新的使用人"},
			{Name: "note", Label: "备注", Type: admin.Text, Max: 200},
		},
	}}
}
