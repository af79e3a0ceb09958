// Package masterdata declares the hospital's master data as admin resources:
// institutions (医疗机构), departments (科室) and medical staff (医务人员). The
// appliance owns and edits them; the cloud keeps a replica.
package masterdata

import (
	"context"
	"fmt"
	"slices"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/sync"
)

// Resources returns the master-data resources in menu order.
func Resources() []*admin.Resource {
	return []*admin.Resource{Institutions(), Departments(), Staff(), DoctorProfiles(),
		ConsultationSettings(), OnlineSchedules(), ReleaseRules()}
}

// DoctorProfiles declares 医生个人主页: what patients read about a doctor. The
// doctor edits it in the app and the hospital in the console; sync merges the
// two field by field.
func DoctorProfiles() *admin.Resource {
	return &admin.Resource{
		Name: "doctor_profiles", Title: "医生主页管理", Noun: "医生主页", Table: "doctor_profiles",
		Perm: "masterdata", Display: "specialty", Sort: "-updated_at",
		Fields: []admin.Field{
			{Name: "staff_id", Label: "医生", Type: admin.Ref, Ref: "staff", Required: true, Immutable: true, Unique: true, Filter: true, List: true},
			{Name: "specialty", Label: "擅长", Type: admin.Text, Max: 500, Search: true, List: true},
			{Name: "notice", Label: "问诊须知", Type: admin.Text, Max: 500, List: true},
			{Name: "accepting", Label: "正在接诊", Type: admin.Bool, Filter: true, List: true},
			{Name: "intro", Label: "个人简介", Type: admin.LongText},
		},
	}
}

// Institutions declares 医疗机构管理.
func Institutions() *admin.Resource {
	return &admin.Resource{
		Name: "institutions", Title: "医疗机构管理", Noun: "医疗机构", Table: "institutions",
		Perm: "masterdata", Display: "name", Sort: "code",
		Fields: []admin.Field{
			{Name: "code", Label: "机构编码", Type: admin.Text, Required: true, Max: 32, Unique: true, Search: true, List: true, Sort: true, Filter: true},
			{Name: "name", Label: "机构名称", Type: admin.Text, Required: true, Max: 100, Search: true, List: true, Sort: true},
			{Name: "short_name", Label: "简称", Type: admin.Text, Max: 50, Search: true},
			{Name: "parent_id", Label: "上级机构（分院填写）", Type: admin.Ref, Ref: "institutions", Filter: true, List: true},
			{Name: "grade", Label: "医院等级", Type: admin.Enum, Options: opts("三级甲等", "三级乙等", "三级", "二级甲等", "二级乙等", "二级", "一级", "未定级"), Filter: true, List: true},
			{Name: "license_no", Label: "执业许可证登记号", Type: admin.Text, Max: 64},
			{Name: "address", Label: "地址", Type: admin.Text, Max: 200},
			{Name: "phone", Label: "联系电话", Type: admin.Phone, List: true},
			{Name: "intro", Label: "机构简介", Type: admin.LongText},
		},
	}
}

// Departments declares 科室信息管理.
func Departments() *admin.Resource {
	return &admin.Resource{
		Name: "departments", Title: "科室信息管理", Noun: "科室", Table: "departments",
		Perm: "masterdata", Scope: "id", Display: "name", Sort: "sort_order",
		Fields: []admin.Field{
			{Name: "institution_id", Label: "所属机构", Type: admin.Ref, Ref: "institutions", Required: true, Filter: true, List: true},
			{Name: "code", Label: "科室编码", Type: admin.Text, Required: true, Max: 32, Unique: true, Search: true, List: true, Sort: true, Filter: true,
				Help: "与 HIS 中的科室编码一致"},
			{Name: "name", Label: "科室名称", Type: admin.Text, Required: true, Max: 100, Search: true, List: true, Sort: true},
			{Name: "parent_id", Label: "上级科室", Type: admin.Ref, Ref: "departments", Filter: true},
			{Name: "category", Label: "科室类别", Type: admin.Enum, Required: true, Options: opts(ihos.DepartmentCategories...), Filter: true, List: true},
			{Name: "location", Label: "位置", Type: admin.Text, Max: 200, List: true},
			{Name: "phone", Label: "科室电话", Type: admin.Phone},
			{Name: "online", Label: "开通互联网诊疗", Type: admin.Bool, Filter: true, List: true},
			{Name: "online_follow_up_only", Label: "在线仅限复诊", Type: admin.Bool, Filter: true, Default: true,
				Help: "勾选（默认）：患者须在本院本科室线下确诊过，才能预约在线复诊（向 HIS 核实）；仅试点科室可取消"},
			{Name: "sort_order", Label: "排序号", Type: admin.Int, Min: 0, Max: 9999, Sort: true},
			{Name: "intro", Label: "科室简介", Type: admin.LongText},
		},
	}
}

// Staff declares 医务人员管理.
func Staff() *admin.Resource {
	var kinds []admin.Option
	for _, k := range ihos.StaffKinds {
		kinds = append(kinds, admin.Option{Value: k, Label: ihos.StaffKindLabels[k]})
	}
	var titles []string
	for _, k := range ihos.StaffKinds {
		titles = append(titles, ihos.Titles[k]...)
	}
	return &admin.Resource{
		Name: "staff", Title: "医务人员管理", Noun: "医务人员", Table: "staff",
		Perm: "masterdata", Scope: "department_id", Display: "name", Sort: "job_no",
		Fields: []admin.Field{
			{Name: "institution_id", Label: "所属机构", Type: admin.Ref, Ref: "institutions", Required: true, Filter: true},
			{Name: "department_id", Label: "所属科室", Type: admin.Ref, Ref: "departments", Required: true, Filter: true, List: true},
			{Name: "job_no", Label: "工号", Type: admin.Text, Required: true, Max: 32, Unique: true, Search: true, List: true, Sort: true, Filter: true},
			{Name: "name", Label: "姓名", Type: admin.Text, Required: true, Max: 50, Search: true, List: true, Sort: true},
			{Name: "gender", Label: "性别", Type: admin.Enum, Options: opts("男", "女"), Filter: true, List: true},
			{Name: "kind", Label: "人员类别", Type: admin.Enum, Required: true, Options: kinds, Filter: true, List: true},
			{Name: "title", Label: "职称", Type: admin.Enum, Options: opts(titles...), Filter: true, List: true},
			{Name: "license_no", Label: "执业证书编码", Type: admin.Text, Max: 64, Search: true,
				Help: "医师、护士、药师开通互联网诊疗须填写"},
			{Name: "practice_since", Label: "执业起始年份", Type: admin.Int, Min: 0, Max: 2100},
			{Name: "phone", Label: "手机号", Type: admin.Phone, Sensitive: true, Filter: true, Search: true, List: true},
			{Name: "id_number", Label: "身份证号", Type: admin.IDNumber, Sensitive: true, Unique: true, Filter: true},
			{Name: "specialty", Label: "擅长", Type: admin.Text, Max: 500},
			{Name: "online", Label: "可互联网诊疗", Type: admin.Bool, Filter: true, List: true},
			{Name: "intro", Label: "个人简介", Type: admin.LongText},
		},
		Validate: validateStaff,
	}
}

// validateStaff enforces the title-kind pairing and the qualification rules of
// internet diagnosis for staff who are opened for online work.
func validateStaff(_ context.Context, rec, _ admin.Record) map[string]string {
	bad := map[string]string{}
	kind, _ := rec["kind"].(string)
	title, _ := rec["title"].(string)
	if title != "" && !slices.Contains(ihos.Titles[kind], title) {
		bad["title"] = fmt.Sprintf("%s不能使用职称“%s”", ihos.StaffKindLabels[kind], title)
	}
	year := time.Now().In(ihos.Shanghai).Year()
	since, _ := rec["practice_since"].(int64)
	if since != 0 && (since < 1950 || int(since) > year) {
		bad["practice_since"] = fmt.Sprintf("年份应在 1950 到 %d 之间", year)
	}
	if online, _ := rec["online"].(bool); online {
		switch kind {
		case ihos.StaffDoctor, ihos.StaffNurse, ihos.StaffPharmacist:
		default:
			bad["online"] = "只有医师、护士、药师可以开通互联网诊疗"
		}
		if lic, _ := rec["license_no"].(string); lic == "" {
			bad["license_no"] = "开通互联网诊疗须填写执业证书编码"
		}
		if id, _ := rec["id_number"].(string); id == "" {
			bad["id_number"] = "开通互联网诊疗须实名（填写身份证号）"
		}
		if kind == ihos.StaffDoctor && (since == 0 || year-int(since) < 3) && bad["practice_since"] == "" {
			bad["practice_since"] = "医师须独立执业满 3 年方可开通互联网诊疗"
		}
	}
	return bad
}

func opts(values ...string) []admin.Option {
	o := make([]admin.Option, len(values))
	for i, v := range values {
		o[i] = admin.Option{Value: v, Label: v}
	}
	return o
}

// Entities declares the master data as replicated entities: the appliance owns
// them and the cloud holds a replica. Staff personal data is sealed under the
// appliance's own key and stays in the hospital.
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "institutions", Table: "institutions", Owner: sync.Appliance},
		{Name: "departments", Table: "departments", Owner: sync.Appliance},
		{Name: "staff", Table: "staff", Owner: sync.Appliance, Local: []string{"phone", "id_number"}},
		{Name: "doctor_profiles", Table: "doctor_profiles", Owner: sync.Shared},
		{Name: "consultation_settings", Table: "consultation_settings", Owner: sync.Appliance},
		{Name: "online_schedules", Table: "online_schedules", Owner: sync.Appliance},
		{Name: "release_rules", Table: "release_rules", Owner: sync.Appliance},
	}
}

// Visit types of an online consultation (问诊方式).
const (
	VisitText  = "text"
	VisitVoice = "voice"
	VisitVideo = "video"
)

// VisitTypes lists the visit types in display order.
var VisitTypes = []string{VisitText, VisitVoice, VisitVideo}

// VisitTypeLabels names each visit type in Chinese.
var VisitTypeLabels = map[string]string{VisitText: "图文问诊", VisitVoice: "语音问诊", VisitVideo: "视频问诊"}

func visitTypeOptions() []admin.Option {
	o := make([]admin.Option, len(VisitTypes))
	for i, v := range VisitTypes {
		o[i] = admin.Option{Value: v, Label: VisitTypeLabels[v]}
	}
	return o
}

// ConsultationSettings declares 在线问诊设置: the fee and the duration of each
// visit type, for every doctor of a title or for one doctor. One row covers
// the three visit types so that "per title" and "per doctor" are each a
// single unique key the generic layer can enforce; a doctor's own row
// replaces their title's row as a whole (package booking resolves it).
func ConsultationSettings() *admin.Resource {
	var titles []string
	titles = append(titles, ihos.Titles[ihos.StaffDoctor]...)
	fields := []admin.Field{
		{Name: "title", Label: "职称", Type: admin.Enum, Options: opts(titles...), Unique: true, Filter: true, List: true,
			Help: "按职称设置时填写；与“医生”二选一"},
		{Name: "staff_id", Label: "医生", Type: admin.Ref, Ref: "staff", Unique: true, Filter: true, List: true,
			Help: "为某位医生单独设置时填写，优先于职称设置"},
	}
	for _, vt := range VisitTypes {
		label := VisitTypeLabels[vt]
		fields = append(fields,
			admin.Field{Name: vt + "_enabled", Label: "开通" + label, Type: admin.Bool, Filter: true, List: true},
			admin.Field{Name: vt + "_fee", Label: label + "费用（分）", Type: admin.Money, Min: 0, Max: 1000000, List: true},
			admin.Field{Name: vt + "_minutes", Label: label + "时长（分钟）", Type: admin.Int, Min: 0, Max: 240},
		)
	}
	return &admin.Resource{
		Name: "consultation_settings", Title: "在线问诊设置", Noun: "问诊设置", Table: "consultation_settings",
		Perm: "masterdata", Display: "title", Sort: "title",
		Fields:   fields,
		Validate: validateConsultationSetting,
	}
}

func validateConsultationSetting(_ context.Context, rec, _ admin.Record) map[string]string {
	bad := map[string]string{}
	title, _ := rec["title"].(string)
	staff, _ := rec["staff_id"].(string)
	switch {
	case title == "" && staff == "":
		bad["title"] = "请选择职称或医生"
	case title != "" && staff != "":
		bad["staff_id"] = "职称与医生只能填写一项"
	}
	for _, vt := range VisitTypes {
		if on, _ := rec[vt+"_enabled"].(bool); on {
			if m, _ := rec[vt+"_minutes"].(int64); m <= 0 {
				bad[vt+"_minutes"] = "开通" + VisitTypeLabels[vt] + "须填写时长"
			}
		}
	}
	return bad
}

// OnlineSchedules declares 在线问诊排班管理: one sitting of a doctor on one day
// for one visit type, cut into slots of a given length or into a given
// number of slots. Disabling a sitting stops its bookings at once.
func OnlineSchedules() *admin.Resource {
	return &admin.Resource{
		Name: "online_schedules", Title: "在线问诊排班管理", Noun: "排班", Table: "online_schedules",
		Perm: "masterdata", Display: "visit_date", Sort: "-visit_date",
		Fields: []admin.Field{
			{Name: "staff_id", Label: "医生", Type: admin.Ref, Ref: "staff", Required: true, Filter: true, List: true},
			{Name: "visit_date", Label: "出诊日期", Type: admin.Text, Required: true, Max: 10, Filter: true, List: true, Sort: true, Help: "格式：2026-12-01"},
			{Name: "start_time", Label: "开始时间", Type: admin.Text, Required: true, Max: 5, List: true, Sort: true, Help: "格式：08:00"},
			{Name: "end_time", Label: "结束时间", Type: admin.Text, Required: true, Max: 5, List: true},
			{Name: "visit_type", Label: "问诊方式", Type: admin.Enum, Required: true, Options: visitTypeOptions(), Filter: true, List: true},
			{Name: "slot_minutes", Label: "每个号源时长（分钟）", Type: admin.Int, Min: 0, Max: 240, List: true, Help: "与“号源数”二选一"},
			{Name: "slot_count", Label: "号源数", Type: admin.Int, Min: 0, Max: 500, List: true, Help: "把时段平均分成几个号源；与“每个号源时长”二选一"},
			{Name: "note", Label: "备注", Type: admin.Text, Max: 200},
		},
		Validate: validateSchedule,
	}
}

// ClockMinutes parses "HH:MM" into minutes after midnight.
func ClockMinutes(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

func validateSchedule(_ context.Context, rec, _ admin.Record) map[string]string {
	bad := map[string]string{}
	date, _ := rec["visit_date"].(string)
	if _, err := time.Parse(time.DateOnly, date); err != nil || len(date) != 10 {
		bad["visit_date"] = "日期格式应为 2026-12-01"
	}
	start, okStart := ClockMinutes(fmt.Sprint(rec["start_time"]))
	end, okEnd := ClockMinutes(fmt.Sprint(rec["end_time"]))
	if !okStart {
		bad["start_time"] = "时间格式应为 08:00"
	}
	if !okEnd {
		bad["end_time"] = "时间格式应为 17:30"
	}
	if okStart && okEnd && end <= start {
		bad["end_time"] = "结束时间须晚于开始时间"
	}
	minutes, _ := rec["slot_minutes"].(int64)
	count, _ := rec["slot_count"].(int64)
	switch {
	case minutes == 0 && count == 0:
		bad["slot_minutes"] = "请填写每个号源时长或号源数"
	case minutes != 0 && count != 0:
		bad["slot_count"] = "每个号源时长与号源数只能填写一项"
	case okStart && okEnd && end > start && minutes > int64(end-start):
		bad["slot_minutes"] = "号源时长不能超过出诊时段"
	case okStart && okEnd && end > start && count > int64(end-start):
		bad["slot_count"] = "每个号源至少 1 分钟"
	}
	return bad
}

// ReleaseRules declares 放号规则设置: how many days ahead a day's slots are
// released, at what time of day, and how many patients one slot takes. A
// department's rule beats the hospital's default (no department).
func ReleaseRules() *admin.Resource {
	return &admin.Resource{
		Name: "release_rules", Title: "放号规则设置", Noun: "放号规则", Table: "release_rules",
		Perm: "masterdata", Display: "release_time", Sort: "release_time",
		Fields: []admin.Field{
			{Name: "department_id", Label: "科室", Type: admin.Ref, Ref: "departments", Unique: true, Filter: true, List: true,
				Help: "留空为全院默认规则"},
			{Name: "days_ahead", Label: "提前放号天数", Type: admin.Int, Required: true, Min: 0, Max: 90, List: true},
			{Name: "release_time", Label: "放号时间", Type: admin.Text, Required: true, Max: 5, List: true, Help: "格式：08:00"},
			{Name: "quota", Label: "每个号源可约人数", Type: admin.Int, Required: true, Min: 1, Max: 1000, List: true},
		},
		Validate: func(_ context.Context, rec, _ admin.Record) map[string]string {
			bad := map[string]string{}
			if _, ok := ClockMinutes(fmt.Sprint(rec["release_time"])); !ok {
				bad["release_time"] = "时间格式应为 08:00"
			}
			return bad
		},
	}
}
