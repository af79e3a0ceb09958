package appliance

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"time"

	"ihos"
	"ihos/certs/svs"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/config"
)

// Credential is one generated login, as written to the credentials file.
type Credential struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role,omitempty"`
	URL      string `json:"url,omitempty"`
	// PIN is the demo doctor's e-signature PIN (signing EMRs and
	// prescriptions in the app).
	PIN string `json:"pin,omitempty"`
}

// firstStart runs once, on a data dir without console users: it creates the
// first system administrator with a generated password (never a fixed one) and,
// in demo mode, the demo hospital and one user of each console role. The logins
// are written to the credentials file; later starts change nothing.
func (a *App) firstStart(ctx context.Context, cfg Config) error {
	var n int
	if err := a.Node.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM console_users`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	path := cfg.Credentials
	if path == "" {
		path = filepath.Join(a.Node.Config.DataDir, "initial-credentials.json")
	}
	sys := ihos.WithActor(ctx, ihos.Actor{UserID: ihos.System.UserID, Username: ihos.System.Username, Name: ihos.System.Name, Role: auth.RoleSysAdmin})
	creds := map[string]Credential{}
	url := "http://" + a.Node.Config.HTTP + "/console/"
	users := []struct{ key, username, name, role string }{
		{"console", "admin", "系统管理员", auth.RoleSysAdmin},
	}
	var deptID string
	if cfg.Demo {
		var err error
		if deptID, err = seedDemo(sys, a.Store); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		if err := seedDemoDevices(sys, a.Store, cfg.DemoPrinter); err != nil {
			return fmt.Errorf("demo printer and kiosk: %w", err)
		}
		a.seededDemo = true
		users = append(users,
			struct{ key, username, name, role string }{"console_hospital_admin", "yiwuke", "医务科 周敏", auth.RoleHospitalAdmin},
			struct{ key, username, name, role string }{"console_dept_admin", "xnk_admin", "心血管内科 科室管理员", auth.RoleDeptAdmin},
			struct{ key, username, name, role string }{"console_auditor", "shenji", "审计员 孙丽", auth.RoleAuditor},
		)
	}
	for _, u := range users {
		pw := newPassword()
		dept := ""
		if u.role == auth.RoleDeptAdmin {
			dept = deptID
		}
		if _, err := a.Node.Auth.CreateUser(sys, auth.User{Username: u.username, DisplayName: u.name, Role: u.role, DepartmentID: dept}, pw); err != nil {
			return fmt.Errorf("create console user %s: %w", u.username, err)
		}
		creds[u.key] = Credential{Username: u.username, Password: pw, Role: u.role, URL: url}
	}
	add := map[string]any{}
	for k, v := range creds {
		add[k] = v
	}
	if cfg.Demo {
		// A demo application of the signing API, as hospital IT would create for
		// another system (the EMR vendor, the LIS) on the console.
		token, err := a.signing.svs.CreateApp(sys, svs.App{Name: "demo", Timestamp: true, Note: "演示应用"})
		if err != nil {
			return fmt.Errorf("demo signing app: %w", err)
		}
		add["svs"] = map[string]string{"token": token, "url": "http://" + a.Node.Config.HTTP + "/api/svs/"}
	}
	if err := config.MergeJSON(path, add); err != nil {
		return err
	}
	slog.Info("first start: console logins generated", "file", path, "demo", cfg.Demo)
	return nil
}

// newPassword returns a random password that meets the policy: 14 characters
// from an alphabet without look-alikes, with letters and digits guaranteed.
func newPassword() string {
	const letters = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
	const digits = "23456789"
	pick := func(set string) byte {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		return set[n.Int64()]
	}
	b := make([]byte, 14)
	for i := range b {
		b[i] = pick(letters + digits)
	}
	b[3], b[9] = pick(digits), pick(letters)
	return string(b)
}

// demoDepartments are the demo hospital's departments: code, name, category,
// location, and whether it offers internet consultations.
var demoDepartments = []struct {
	code, name, category, location string
	online                         bool
}{
	{"XNK", "心血管内科", "临床", "门诊楼 3 层 A 区", true},
	{"HXK", "呼吸与危重症医学科", "临床", "门诊楼 3 层 B 区", true},
	{"XHK", "消化内科", "临床", "门诊楼 4 层 A 区", true},
	{"NFM", "内分泌科", "临床", "门诊楼 4 层 B 区", true},
	{"SJK", "神经内科", "临床", "门诊楼 5 层 A 区", true},
	{"PWK", "普通外科", "临床", "外科楼 2 层", false},
	{"GK", "骨科", "临床", "外科楼 3 层", true},
	{"FCK", "妇产科", "临床", "妇儿楼 2 层", true},
	{"EK", "儿科", "临床", "妇儿楼 3 层", true},
	{"PFK", "皮肤科", "临床", "门诊楼 6 层", true},
	{"ZYK", "中医科", "临床", "门诊楼 7 层", true},
	{"YJK", "药剂科", "药剂", "门诊楼 1 层", false},
	{"HLB", "护理部", "护理", "行政楼 2 层", true},
	{"JYK", "检验科", "医技", "医技楼 1 层", false},
	{"YWK", "医务科", "行政", "行政楼 3 层", false},
}

var surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董")
var givenNames = []string{"伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "晓燕", "志强", "海燕", "文博", "雨桐", "子涵"}

// seedDemo creates the demo hospital through the admin store, so demo data is
// validated and audited exactly like data typed in the console. It returns the
// id of 心血管内科 for the demo department administrator.
func seedDemo(ctx context.Context, s *admin.Store) (string, error) {
	res := func(name string) *admin.Resource { r, _ := s.Resource(name); return r }
	main, err := s.Create(ctx, res("institutions"), map[string]any{
		"code": "440101000001", "name": "示例市第一人民医院", "short_name": "市一医院", "grade": "三级甲等",
		"license_no": "44010100000001", "address": "示例市越秀区中山二路 58 号", "phone": "020-87654321",
		"intro": "示例市第一人民医院是一所集医疗、教学、科研、预防保健于一体的三级甲等综合医院，已获批设立互联网医院。",
	})
	if err != nil {
		return "", err
	}
	branch, err := s.Create(ctx, res("institutions"), map[string]any{
		"code": "440101000002", "name": "示例市第一人民医院东院区", "short_name": "市一东院", "grade": "三级甲等",
		"parent_id": main["id"], "address": "示例市天河区黄埔大道 300 号", "phone": "020-87650000",
	})
	if err != nil {
		return "", err
	}
	depts := map[string]string{}
	for i, d := range demoDepartments {
		inst := main["id"]
		if d.code == "GK" || d.code == "PFK" {
			inst = branch["id"]
		}
		rec, err := s.Create(ctx, res("departments"), map[string]any{
			"institution_id": inst, "code": d.code, "name": d.name, "category": d.category,
			"location": d.location, "online": d.online, "online_follow_up_only": true, "sort_order": (i + 1) * 10, "phone": fmt.Sprintf("020-8765%04d", 1000+i),
		})
		if err != nil {
			return "", err
		}
		depts[d.code] = rec["id"].(string)
	}
	// 36 staff: doctors of every title across the clinical departments, nurses,
	// pharmacists, a laboratory technician and administrators.
	type person struct{ dept, kind, title string }
	var people []person
	doctorTitles := ihos.Titles[ihos.StaffDoctor][:4]
	clinical := []string{"XNK", "HXK", "XHK", "NFM", "SJK", "PWK", "GK", "FCK", "EK", "PFK", "ZYK"}
	for i := 0; i < 22; i++ {
		people = append(people, person{clinical[i%len(clinical)], ihos.StaffDoctor, doctorTitles[i%len(doctorTitles)]})
	}
	nurseTitles := []string{"主任护师", "副主任护师", "主管护师", "护师", "护士"}
	for i := 0; i < 8; i++ {
		people = append(people, person{[]string{"HLB", "XNK", "EK", "FCK"}[i%4], ihos.StaffNurse, nurseTitles[i%len(nurseTitles)]})
	}
	for _, t := range []string{"主任药师", "主管药师", "药师"} {
		people = append(people, person{"YJK", ihos.StaffPharmacist, t})
	}
	people = append(people, person{"JYK", ihos.StaffTechnician, "主管技师"}, person{"YWK", ihos.StaffAdmin, "科员"}, person{"YWK", ihos.StaffAdmin, "助理研究员"})

	year := time.Now().In(ihos.Shanghai).Year()
	deptInst := map[string]any{}
	for _, d := range demoDepartments {
		deptInst[d.code] = main["id"]
		if d.code == "GK" || d.code == "PFK" {
			deptInst[d.code] = branch["id"]
		}
	}
	for i, p := range people {
		gender := []string{"男", "女"}[i%2]
		seniority := 3 + (len(ihos.Titles[p.kind])-indexOf(ihos.Titles[p.kind], p.title))*5 + i%4
		rec := map[string]any{
			"institution_id": deptInst[p.dept], "department_id": depts[p.dept],
			"job_no": fmt.Sprintf("%s%04d", map[string]string{ihos.StaffDoctor: "D", ihos.StaffNurse: "N", ihos.StaffPharmacist: "P", ihos.StaffTechnician: "T", ihos.StaffAdmin: "A"}[p.kind], 1001+i),
			"name":   demoName(i),
			"gender": gender, "kind": p.kind, "title": p.title,
			"phone":          fmt.Sprintf("139%08d", 20000000+i*7919),
			"id_number":      demoIDNumber(year-28-seniority, i),
			"practice_since": year - seniority,
		}
		if p.kind == ihos.StaffDoctor || p.kind == ihos.StaffNurse || p.kind == ihos.StaffPharmacist {
			rec["license_no"] = fmt.Sprintf("1104401%08d", 10000+i*37)
			rec["online"] = p.kind != ihos.StaffNurse || seniority >= 5
		}
		if p.kind == ihos.StaffDoctor {
			rec["specialty"] = "常见病、慢性病的诊治与复诊随访"
		}
		if _, err := s.Create(ctx, res("staff"), rec); err != nil {
			return "", fmt.Errorf("staff %v: %w", rec["name"], err)
		}
	}
	return depts["XNK"], nil
}

// demoName is the name of demo person i: the two formulas repeat after 5 and
// 30 people, so from the 31st on the given name moves on one, keeping all 36
// names distinct (a pharmacist named like the doctor made a review look like
// the doctor's own).
func demoName(i int) string {
	return string(surnames[(i*7)%len(surnames)]) + givenNames[(i*11+i/len(givenNames))%len(givenNames)]
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return len(list)
}

// demoIDNumber makes a valid-checksum resident ID number (area 440104) for the
// demo; the numbers are synthetic.
func demoIDNumber(birthYear, i int) string {
	base := fmt.Sprintf("440104%04d%02d%02d%03d", birthYear, 1+i%12, 1+i%28, 100+i)
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for k, w := range weights {
		sum += int(base[k]-'0') * w
	}
	return base + string("10X98765432"[sum%11])
}
