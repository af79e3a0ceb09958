package h5_test

import (
	"testing"
	"time"

	"ihos"
	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/his/hissim"
	"ihos/idverify/idsim"
	"ihos/paychannel/paysim"
)

// rig is a cloud serving over a real socket, wired to the payment channel,
// SMS and identity-verification simulators as make run wires it, with a
// hospital's replicated master data written into its database as sync
// would (a department, doctor doc1 with fees, a release rule, schedules).
type rig struct {
	*cloudtest.Cloud
	kid  string // a child under 6 the identity simulator knows
	demo hissim.DemoPatient
}

func newRig(t testing.TB) *rig {
	t.Helper()
	first17 := "11010120230510123"
	kid := first17 + string(ihos.IDCheckDigit(first17))
	c := cloudtest.Start(t, cloudtest.Options{Pay: true, Patients: true, People: []idsim.Person{{Name: "张小宝", IDNumber: kid}},
		AdjustPay: func(pc *cloud.PayChannelConfig) { pc.QueryAfter = 300 * time.Millisecond }, Timeout: time.Minute})
	// As make run's demo: every order is paid a moment after it is made.
	c.PayMode(paysim.Mode{AutoPay: true, AutoPayDelayMS: 1500})
	r := &rig{Cloud: c, kid: kid, demo: hissim.DemoPatients[0]}
	r.seed()
	return r
}

// cli calls the API as the command-line tool (staff-level).
func (r *rig) cli(method, path string, body, out any) (int, string) {
	r.T.Helper()
	return r.Call(method, path, body, out, r.CLI())
}

// seed writes department 心血管内科 with doctor 李明 (主任医师, 高血压; text
// 20 元, voice 30 元) and a second doctor, a release rule that released
// tomorrow's slots already, and tomorrow's text sitting of 李明.
func (r *rig) seed() {
	r.Department(cloudtest.Department{ID: "d1", Code: "XNK", Name: "心血管内科"})
	r.Department(cloudtest.Department{ID: "d2", Code: "NFM", Name: "内分泌科"})
	r.Staff(cloudtest.Staff{ID: "doc1", Department: "d1", JobNo: "J001", Name: "李明", Kind: ihos.StaffDoctor, Title: "主任医师",
		Specialty: "高血压、冠心病、心力衰竭的诊治", Intro: "从事心血管内科临床工作 25 年。", Online: true})
	r.Staff(cloudtest.Staff{ID: "doc2", Department: "d2", JobNo: "J002", Name: "周敏", Kind: ihos.StaffDoctor, Title: "主治医师",
		Specialty: "糖尿病、甲状腺疾病", Online: true})
	r.Fees(cloudtest.Fees{Title: "主任医师", Text: 2000, Voice: 3000})
	r.ReleaseRule(1, time.Now().Add(-time.Minute).In(ihos.Shanghai).Format("15:04"), 2)
	r.Schedule(cloudtest.Schedule{ID: "s1", Staff: "doc1", Date: cloudtest.Tomorrow(), Start: "08:00", End: "11:00", Type: "text", SlotMinutes: 30})
	r.Schedule(cloudtest.Schedule{ID: "s2", Staff: "doc1", Date: cloudtest.Tomorrow(), Start: "14:00", End: "15:00", Type: "voice", SlotMinutes: 15})
}

// call calls the API with a bearer token ("" for none) and decodes a
// success into out; it returns the status and an error's message.
func (r *rig) call(token, method, path string, body, out any) (int, string) {
	r.T.Helper()
	return r.Call(method, path, body, out, cloudtest.Bearer(token))
}

// doctor gives doc1 app access and passes today's real-name check: the
// bearer token of a doctor ready to accept.
func (r *rig) doctor() string {
	r.T.Helper()
	return r.Doctor("doc1", "13600136000")
}

// pharmacist adds pharmacist ph1 with app access: their bearer token.
func (r *rig) pharmacist() string {
	r.T.Helper()
	r.Staff(cloudtest.Staff{ID: "ph1", Department: "d1", JobNo: "J101", Name: "赵药师", Kind: ihos.StaffPharmacist, Title: "主管药师"})
	return r.AppStaff("ph1", "13500135000")
}

// clinical stands in for the appliance the cloud reaches over the sync RPC
// (not connected in these tests): the doctor's e-signature (any document
// signed with PIN 246810) and the HIS that receives orders.
func (r *rig) clinical() {
	r.App.Prescriptions.Signer, r.App.Prescriptions.HIS = cloudtest.Signer{}, &cloudtest.HIS{}
	r.App.EMR.Signer, r.App.EMR.HIS = cloudtest.Signer{}, &cloudtest.HIS{}
	r.Catalog(cloudtest.CatalogItem{Kind: "DRUG", Code: "AML5", Name: "苯磺酸氨氯地平片", Price: 2350},
		cloudtest.CatalogItem{Kind: "LAB", Code: "XCG", Name: "血常规", Unit: "次", Price: 2000})
}

// sittingNow moves doc1's sitting to today around now, as the console
// would, so the doctor may accept.
func (r *rig) sittingNow() {
	r.Exec(`UPDATE online_schedules SET visit_date = ?, start_time = '00:00', end_time = '23:59' WHERE id = 's1'`, cloudtest.Today())
}
