package h5_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/cloud"
	"ihos/his"
	"ihos/his/hissim"
	"ihos/idverify/idsim"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
	"ihos/sms/smssim"
	"ihos/staffauth"
)

const (
	testHosp   = "h1"
	testMchID  = "1900000109"
	testAppID  = "wxd678efh567hg6787"
	testSerial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	testAPIv3  = "0123456789abcdef0123456789abcdef"
)

// rig is a cloud serving over a real socket, wired to the payment channel,
// SMS and identity-verification simulators as make run wires it, with a
// hospital's replicated master data written into its database as sync
// would (a department, doctor doc1 with fees, a release rule, schedules).
type rig struct {
	t    testing.TB
	app  *cloud.App
	url  string
	cli  func(method, path string, body, out any) (int, string) // as the command-line tool (staff-level)
	pay  *paysim.Sim
	sms  *smssim.Sim
	hc   *http.Client
	kid  string // a child under 6 the identity simulator knows
	demo hissim.DemoPatient
}

func newRig(t testing.TB) *rig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	merchant, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	platform, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pay, err := paysim.Start(ctx, paysim.Config{PlatformKey: platform,
		NotifyRetry: []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond, time.Second},
		Merchants: []paysim.Merchant{{MchID: testMchID, AppID: testAppID, SerialNo: testSerial,
			PublicKey: &merchant.PublicKey, APIv3Key: []byte(testAPIv3)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pay.Close() })
	// As make run's demo: every order is paid a moment after it is made.
	if err := pay.SetMode(paysim.Mode{AutoPay: true, AutoPayDelayMS: 1500}); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "merchant_key.pem")
	if err := os.WriteFile(keyFile, paychannel.MarshalPrivateKeyPEM(merchant), 0o600); err != nil {
		t.Fatal(err)
	}
	sms, err := smssim.Start(ctx, smssim.Config{AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sms.Close() })
	first17 := "11010120230510123"
	kid := first17 + string(ihos.IDCheckDigit(first17))
	ids, err := idsim.Start(ctx, idsim.Config{AppCode: "app", People: []idsim.Person{{Name: "张小宝", IDNumber: kid}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ids.Close() })

	var handler atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	app, err := cloud.New(ctx, cloud.Config{
		Config: node.Config{DataDir: filepath.Join(dir, "cloud"), HTTP: "127.0.0.1:0", LogLevel: "error"},
		PayChannel: cloud.PayChannelConfig{URL: pay.URL(), MchID: testMchID, AppID: testAppID, SerialNo: testSerial,
			MerchantKey: keyFile, APIv3Key: testAPIv3, PlatformCertURL: pay.URL() + "/control/platform.pem",
			NotifyURL: srv.URL + "/api/pay/notify", QueryAfter: 300 * time.Millisecond},
		Patients: cloud.PatientConfig{
			SMS:      cloud.SMSConfig{URL: sms.URL(), AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"},
			IDVerify: cloud.IDVerifyConfig{URL: ids.URL(), AppCode: "app"},
		},
	})
	if err != nil {
		t.Fatalf("cloud.New: %v", err)
	}
	t.Cleanup(app.Close)
	handler.Store(web.Middleware(app.Handler))
	if _, err := app.Hospitals.Add(ctx, testHosp, "示例市第一人民医院"); err != nil {
		t.Fatal(err)
	}
	// Linking to the HIS is an RPC to the hospital's appliance: answered
	// here from the HIS simulator's demo patients.
	app.Patients.LinkPatient = func(ctx context.Context, hospital string, req his.LinkRequest) (his.PatientLink, error) {
		for _, p := range hissim.DemoPatients {
			if p.IDNumber == req.IDNumber {
				return his.PatientLink{PatientID: req.PatientID, HISPatientID: p.HISID, Status: his.LinkLinked, Confidence: 100}, nil
			}
		}
		return his.PatientLink{}, ihos.Errorf(ihos.ENotFound, "未在医院 HIS 中找到该患者的档案")
	}
	r := &rig{t: t, app: app, url: srv.URL, pay: pay, sms: sms, hc: &http.Client{Timeout: time.Minute}, kid: kid, demo: hissim.DemoPatients[0]}
	token, err := os.ReadFile(filepath.Join(app.Node.Config.DataDir, node.CLITokenFile))
	if err != nil {
		t.Fatal(err)
	}
	r.cli = func(method, path string, body, out any) (int, string) {
		return r.do(method, path, body, out, map[string]string{node.CLITokenHeader: strings.TrimSpace(string(token))})
	}
	r.seed()
	return r
}

func (r *rig) exec(q string, args ...any) {
	r.t.Helper()
	err := r.app.Node.DB.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	})
	if err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

// seed writes department 心血管内科 with doctor 李明 (主任医师, 高血压; text
// 20 元, voice 30 元) and a second doctor, a release rule that released
// tomorrow's slots already, and tomorrow's text sitting of 李明.
func (r *rig) seed() {
	now := ihos.FormatTime(time.Now())
	r.exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, category, online, enabled, version, created_at, updated_at)
		VALUES ('d1', ?, 'i1', 'XNK', '心血管内科', '临床', 1, 1, 1, ?, ?)`, testHosp, now, now)
	r.exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, category, online, enabled, version, created_at, updated_at)
		VALUES ('d2', ?, 'i1', 'NFM', '内分泌科', '临床', 1, 1, 1, ?, ?)`, testHosp, now, now)
	r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, specialty, intro, online, enabled, version, created_at, updated_at)
		VALUES ('doc1', ?, 'i1', 'd1', 'J001', '李明', 'doctor', '主任医师', '高血压、冠心病、心力衰竭的诊治', '从事心血管内科临床工作 25 年。', 1, 1, 1, ?, ?)`, testHosp, now, now)
	r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, specialty, online, enabled, version, created_at, updated_at)
		VALUES ('doc2', ?, 'i1', 'd2', 'J002', '周敏', 'doctor', '主治医师', '糖尿病、甲状腺疾病', 1, 1, 1, ?, ?)`, testHosp, now, now)
	r.exec(`INSERT INTO consultation_settings (id, hospital_id, title, staff_id, text_enabled, text_fee, text_minutes, voice_enabled, voice_fee, voice_minutes,
		video_enabled, video_fee, video_minutes, enabled, version, created_at, updated_at) VALUES (?, ?, '主任医师', NULL, 1, 2000, 30, 1, 3000, 15, 0, 0, 0, 1, 1, ?, ?)`,
		ihos.NewID(), testHosp, now, now)
	rt := time.Now().Add(-time.Minute).In(ihos.Shanghai).Format("15:04")
	r.exec(`INSERT INTO release_rules (id, hospital_id, department_id, days_ahead, release_time, quota, enabled, version, created_at, updated_at)
		VALUES (?, ?, NULL, 1, ?, 2, 1, 1, ?, ?)`, ihos.NewID(), testHosp, rt, now, now)
	r.exec(`INSERT INTO online_schedules (id, hospital_id, staff_id, visit_date, start_time, end_time, visit_type, slot_minutes, slot_count, enabled, version, created_at, updated_at)
		VALUES ('s1', ?, 'doc1', ?, '08:00', '11:00', 'text', 30, 0, 1, 1, ?, ?)`, testHosp, time.Now().In(ihos.Shanghai).AddDate(0, 0, 1).Format(time.DateOnly), now, now)
	r.exec(`INSERT INTO online_schedules (id, hospital_id, staff_id, visit_date, start_time, end_time, visit_type, slot_minutes, slot_count, enabled, version, created_at, updated_at)
		VALUES ('s2', ?, 'doc1', ?, '14:00', '15:00', 'voice', 15, 0, 1, 1, ?, ?)`, testHosp, time.Now().In(ihos.Shanghai).AddDate(0, 0, 1).Format(time.DateOnly), now, now)
}

// call calls the API with a bearer token ("" for none) and decodes a
// success into out; it returns the status and an error's message.
func (r *rig) call(token, method, path string, body, out any) (int, string) {
	r.t.Helper()
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return r.do(method, path, body, out, h)
}

func (r *rig) do(method, path string, body, out any, header map[string]string) (int, string) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e web.ErrorBody
		json.Unmarshal(b, &e)
		return resp.StatusCode, e.Message
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			r.t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, ""
}

// doctor gives doc1 app access and passes today's real-name check: the
// bearer token of a doctor ready to accept.
func (r *rig) doctor() string {
	r.t.Helper()
	const phone = "13600136000"
	token := r.appStaff("doc1", phone)
	if code, msg := r.call(token, "POST", "/api/staff/realname/code", nil, nil); code != http.StatusNoContent {
		r.t.Fatalf("real-name code: %d %s", code, msg)
	}
	if code, msg := r.call(token, "POST", "/api/staff/realname", map[string]string{"code": r.sms.LastCode(phone)}, nil); code != 200 {
		r.t.Fatalf("real name: %d %s", code, msg)
	}
	return token
}

// pharmacist adds pharmacist ph1 with app access: their bearer token.
func (r *rig) pharmacist() string {
	r.t.Helper()
	now := ihos.FormatTime(time.Now())
	r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, online, enabled, version, created_at, updated_at)
		VALUES ('ph1', ?, 'i1', 'd1', 'J101', '赵药师', 'pharmacist', '主管药师', 0, 1, 1, ?, ?)`, testHosp, now, now)
	return r.appStaff("ph1", "13500135000")
}

// appStaff gives staff member id a phone and app access as the hospital's
// console does, logs in and changes the issued password: the bearer token.
func (r *rig) appStaff(id, phone string) string {
	r.t.Helper()
	ctx := context.Background()
	n := r.app.Node
	sealed, err := n.Sealer.Seal(phone)
	if err != nil {
		r.t.Fatal(err)
	}
	r.exec(`UPDATE staff SET phone = ?, phone_bidx = ?, license_no = ? WHERE id = ?`, sealed, n.Sealer.Index(phone), "LIC-"+id, id)
	console := staffauth.New(n.DB, n.Sealer)
	console.Hospital, console.BcryptCost = testHosp, 4
	issued, err := console.Grant(ctx, id)
	if err != nil {
		r.t.Fatal(err)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if code, msg := r.call("", "POST", "/api/staff/login", map[string]string{"phone": phone, "password": issued}, &sess); code != 200 {
		r.t.Fatalf("doctor login: %d %s", code, msg)
	}
	if code, msg := r.call(sess.Token, "POST", "/api/staff/password", map[string]string{"old_password": issued, "new_password": "Chosen-Pass-2026"}, nil); code != http.StatusNoContent {
		r.t.Fatalf("change password: %d %s", code, msg)
	}
	return sess.Token
}

// clinical stands in for the appliance the cloud reaches over the sync RPC
// (not connected in these tests): the doctor's e-signature (any document
// signed with PIN 246810) and the HIS that receives orders.
func (r *rig) clinical() {
	r.app.Prescriptions.Signer, r.app.Prescriptions.HIS = fakeSigner{}, fakeHIS{}
	r.app.EMR.Signer, r.app.EMR.HIS = fakeSigner{}, fakeHIS{}
	now := ihos.FormatTime(time.Now())
	r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, flags, enabled, created_at, updated_at) VALUES (?, ?, 'DRUG', 'AML5', '苯磺酸氨氯地平片', '盒', 2350, '', 1, ?, ?)`,
		ihos.NewID(), testHosp, now, now)
	r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, specimen, enabled, created_at, updated_at) VALUES (?, ?, 'LAB', 'XCG', '血常规', '次', 2000, '', 1, ?, ?)`,
		ihos.NewID(), testHosp, now, now)
}

type fakeSigner struct{}

func (fakeSigner) Sign(ctx context.Context, staffID, pin string, doc []byte) ([]byte, error) {
	if pin != "246810" {
		return nil, ihos.Errorf(ihos.EForbidden, "签名密码错误")
	}
	return []byte("FAKE-SIG:" + staffID), nil
}

type fakeHIS struct{}

func (fakeHIS) PlaceOrder(ctx context.Context, hospital string, req his.OrderRequest) ([]his.Order, error) {
	var out []his.Order
	for i, it := range req.Items {
		out = append(out, his.Order{ID: fmt.Sprintf("%s-%d", req.Key, i), Kind: req.Kind, Code: it.Code, Status: his.OrderQueued})
	}
	return out, nil
}

// sittingNow moves doc1's sitting to today around now, as the console
// would, so the doctor may accept.
func (r *rig) sittingNow() {
	r.exec(`UPDATE online_schedules SET visit_date = ?, start_time = '00:00', end_time = '23:59' WHERE id = 's1'`,
		time.Now().In(ihos.Shanghai).Format(time.DateOnly))
}

func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
