package his

import (
	"ihos"
	"ihos/internal/admin"
)

// Resources declares the HIS data the console manages through the generic
// resource layer: the catalogue (read-only: the HIS is its source), the code
// mapping between the platform and the HIS, and the master patient index,
// whose links below full confidence staff confirm, correct or reject.
func Resources() []*admin.Resource {
	kinds := []admin.Option{{Value: ihos.CatalogDrug, Label: "药品"}, {Value: ihos.CatalogExam, Label: "检查"}, {Value: ihos.CatalogLab, Label: "检验"}}
	return []*admin.Resource{
		{
			Name: "his_catalog", Title: "HIS 药品与检查检验目录", Noun: "目录项目", Table: "his_catalog",
			Perm: "his", Display: "name", Sort: "code", ReadOnly: true,
			Fields: []admin.Field{
				{Name: "kind", Label: "类别", Type: admin.Enum, Options: kinds, Filter: true, List: true},
				{Name: "code", Label: "编码", Type: admin.Text, Max: 64, Search: true, List: true, Sort: true},
				{Name: "name", Label: "名称", Type: admin.Text, Max: 200, Search: true, List: true, Sort: true},
				{Name: "spec", Label: "规格", Type: admin.Text, Max: 200, List: true},
				{Name: "unit", Label: "单位", Type: admin.Text, Max: 20, List: true},
				{Name: "price_fen", Label: "价格（元）", Type: admin.Money, List: true, Sort: true},
				{Name: "stock", Label: "库存", Type: admin.Int, List: true},
				{Name: "flags", Label: "管制标记", Type: admin.Text, Max: 100, Filter: true, List: true,
					Help: "NARC 麻醉药品，PSY1/PSY2 第一/二类精神药品，TOX 医疗用毒性药品，ANTI1–3 抗菌药物分级"},
				{Name: "category", Label: "分类", Type: admin.Text, Max: 50, Filter: true, List: true},
				{Name: "specimen", Label: "标本", Type: admin.Text, Max: 50},
			},
		},
		{
			Name: "his_code_maps", Title: "HIS 编码对照", Noun: "对照", Table: "his_code_maps",
			Perm: "his", Display: "platform_code", Sort: "kind",
			Fields: []admin.Field{
				{Name: "kind", Label: "类别", Type: admin.Enum, Required: true, Filter: true, List: true,
					Options: []admin.Option{{Value: "department", Label: "科室"}, {Value: "staff", Label: "医务人员"}, {Value: "drug", Label: "药品"}}},
				{Name: "platform_code", Label: "平台编码", Type: admin.Text, Required: true, Max: 64, Search: true, List: true, Sort: true,
					Help: "科室编码、医务人员工号或药品编码"},
				{Name: "his_code", Label: "HIS 编码", Type: admin.Text, Required: true, Max: 64, Search: true, List: true},
				{Name: "his_name", Label: "HIS 名称", Type: admin.Text, Max: 200, Search: true, List: true},
			},
		},
		{
			Name: "patient_links", Title: "患者主索引（线上账号与 HIS 档案）", Noun: "关联", Table: "patient_links",
			Perm: "his", Display: "his_patient_id", Sort: "-updated_at", NoDelete: true,
			Fields: []admin.Field{
				{Name: "patient_id", Label: "平台患者", Type: admin.Ref, Ref: "patients", Required: true, Immutable: true, List: true},
				{Name: "his_patient_id", Label: "HIS 患者编号", Type: admin.Text, Required: true, Max: 64, Search: true, Filter: true, List: true},
				{Name: "method", Label: "匹配方式", Type: admin.Enum, Required: true, List: true, Filter: true,
					Options: []admin.Option{{Value: "id_number", Label: "身份证号"}, {Value: "insurance", Label: "医保卡号"}, {Value: "his_id", Label: "HIS 编号"}, {Value: "manual", Label: "人工"}}},
				{Name: "confidence", Label: "可信度", Type: admin.Int, Min: 0, Max: 100, List: true, Sort: true},
				{Name: "status", Label: "状态", Type: admin.Enum, Required: true, Filter: true, List: true,
					Options: []admin.Option{{Value: "linked", Label: "已关联"}, {Value: "review", Label: "待人工确认"}, {Value: "rejected", Label: "已否决"}}},
				{Name: "note", Label: "备注", Type: admin.Text, Max: 200},
			},
		},
	}
}
