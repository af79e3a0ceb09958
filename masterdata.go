package ihos

// Institution is a medical institution (医疗机构): the hospital, or a branch of it
// (ParentID set). The appliance owns institutions; the cloud holds a replica.
type Institution struct {
	ID        string `json:"id"`
	Code      string `json:"code"` // the institution code other systems (HIS, insurance) know it by
	Name      string `json:"name"`
	ShortName string `json:"short_name"`
	ParentID  string `json:"parent_id,omitempty"`
	Grade     string `json:"grade"`      // 医院等级, e.g. 三级甲等
	LicenseNo string `json:"license_no"` // 医疗机构执业许可证登记号
	Address   string `json:"address"`
	Phone     string `json:"phone"`
	Enabled   bool   `json:"enabled"`
	Version   int64  `json:"version"`
}

// Department is a department (科室) of an institution.
type Department struct {
	ID            string `json:"id"`
	InstitutionID string `json:"institution_id"`
	ParentID      string `json:"parent_id,omitempty"`
	Code          string `json:"code"` // the HIS department code
	Name          string `json:"name"`
	Category      string `json:"category"` // one of DepartmentCategories
	Online        bool   `json:"online"`   // offers internet consultations
	Enabled       bool   `json:"enabled"`
	Version       int64  `json:"version"`
}

// DepartmentCategories are the kinds of department.
var DepartmentCategories = []string{"临床", "医技", "护理", "药剂", "行政"}

// Staff is a member of the medical staff (医务人员). Internet consultations are
// only open to real-name, qualified staff: LicenseNo and PracticeSince are what
// the regulations check (doctors at least 3 years of independent practice; home
// nursing at least 5 years and title 护师 or above).
type Staff struct {
	ID            string `json:"id"`
	InstitutionID string `json:"institution_id"`
	DepartmentID  string `json:"department_id"`
	JobNo         string `json:"job_no"` // 工号
	Name          string `json:"name"`
	Gender        string `json:"gender"`
	Kind          string `json:"kind"`  // one of the Staff* kinds
	Title         string `json:"title"` // professional title, one of Titles[Kind]
	LicenseNo     string `json:"license_no"`
	PracticeSince int    `json:"practice_since"` // the year independent practice began
	Online        bool   `json:"online"`
	Enabled       bool   `json:"enabled"`
	Version       int64  `json:"version"`
}

// Staff kinds.
const (
	StaffDoctor     = "doctor"
	StaffNurse      = "nurse"
	StaffPharmacist = "pharmacist"
	StaffTechnician = "technician"
	StaffAdmin      = "admin"
)

// StaffKindLabels names each kind in Chinese.
var StaffKindLabels = map[string]string{
	StaffDoctor:     "医师",
	StaffNurse:      "护士",
	StaffPharmacist: "药师",
	StaffTechnician: "技师",
	StaffAdmin:      "行政人员",
}

// StaffKinds lists the kinds in display order.
var StaffKinds = []string{StaffDoctor, StaffNurse, StaffPharmacist, StaffTechnician, StaffAdmin}

// Titles are the professional titles (职称) each kind may hold, senior first.
var Titles = map[string][]string{
	StaffDoctor:     {"主任医师", "副主任医师", "主治医师", "住院医师", "医士"},
	StaffNurse:      {"主任护师", "副主任护师", "主管护师", "护师", "护士"},
	StaffPharmacist: {"主任药师", "副主任药师", "主管药师", "药师", "药士"},
	StaffTechnician: {"主任技师", "副主任技师", "主管技师", "技师", "技士"},
	StaffAdmin:      {"研究员", "副研究员", "助理研究员", "科员"},
}

// ValidHospitalID reports whether id can name a hospital: it becomes part of
// NATS subjects, stream and account names and certificate names, so it is
// letters, digits, '-' and '_', at most 36 characters.
func ValidHospitalID(id string) bool {
	if len(id) == 0 || len(id) > 36 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
