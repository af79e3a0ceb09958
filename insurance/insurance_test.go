package insurance_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/his/hissim"
	"ihos/insurance"
	"ihos/insurance/inssim"
)

// clock is a settable time source shared by the simulator and the client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testFixmedins = "H11010500123"

func start(t *testing.T) (*inssim.Sim, *insurance.Client, *clock) {
	t.Helper()
	clk := &clock{t: time.Now()}
	sim, err := inssim.Start(context.Background(), inssim.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	c := &insurance.Client{
		BaseURL: sim.URL(),
		Fixmedins: insurance.Institution{
			Code: testFixmedins, Name: "北京市示范互联网医院", MdtrtareaAdmvs: "110105",
			RecerSysCode: "FSI_LOCAL", DevNo: "KIOSK-01",
		},
		Operator: insurance.Operator{Type: insurance.OpterKiosk, ID: "KIOSK-01", Name: "自助机01"},
		Timeout:  5 * time.Second,
		Now:      clk.Now,
	}
	return sim, c, clk
}

func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	if ihos.ErrorCode(err) != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	if msgPart != "" && !strings.Contains(ihos.ErrorMessage(err), msgPart) {
		t.Fatalf("message %q does not contain %q", ihos.ErrorMessage(err), msgPart)
	}
}

func TestPersonByIDCard(t *testing.T) {
	_, c, _ := start(t)
	p, err := c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: "110101199003078515"})
	if err != nil {
		t.Fatal(err)
	}
	b := p.BaseInfo
	if b.PsnName != "张三" || b.Certno != "110101199003078515" || b.PsnCertType != "01" || b.Gend != "1" || b.Brdy != "1990-03-07" || b.PsnNo == "" || b.Age == "" {
		t.Fatalf("baseinfo = %+v", b)
	}
	in, ok := p.ActiveInsurance()
	if !ok || in.Insutype != insurance.InsutypeEmployee || in.Balc != 125680 || in.InsuplcAdmdvs != "110100" || in.EmpName == "" {
		t.Fatalf("insuinfo = %+v", p.InsuInfo)
	}
	if p.IdetInfo == nil {
		t.Fatal("idetinfo should be an empty list, not missing")
	}

	// 王五 is a resident without a personal account.
	p, err = c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: hissim.DemoPatients[2].IDNumber, PsnName: "王五"})
	if err != nil {
		t.Fatal(err)
	}
	if in, _ := p.ActiveInsurance(); in.Insutype != insurance.InsutypeResident || in.Balc != 0 {
		t.Fatalf("王五 insuinfo = %+v", p.InsuInfo)
	}

	// A name that does not match is refused by the platform.
	_, err = c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: "110101199003078515", PsnName: "李四"})
	wantCode(t, err, ihos.EInvalid, "姓名")
}

func TestPersonBySSCard(t *testing.T) {
	sim, c, _ := start(t)
	card := hissim.DemoPatients[1].InsuranceCard
	p, err := c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertSSCard, MdtrtCertNo: card, CardSN: "A1B2C3D4E5F6"})
	if err != nil {
		t.Fatal(err)
	}
	if p.BaseInfo.PsnName != "李四" || p.InsuInfo[0].Balc != 348000 {
		t.Fatalf("person = %+v", p)
	}
	// Without the chip's card_sn the client refuses before calling.
	n := len(sim.Requests())
	_, err = c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertSSCard, MdtrtCertNo: card})
	wantCode(t, err, ihos.EInvalid, "识别码")
	if len(sim.Requests()) != n {
		t.Fatal("a request was sent for an incomplete query")
	}
}

// issueToken asks the simulator for a token over its control API, as the demo does.
func issueToken(t *testing.T, sim *inssim.Sim, id string) inssim.ECToken {
	t.Helper()
	resp, err := http.Post(sim.URL()+"/control/ectoken", "application/json", strings.NewReader(`{"id_number":"`+id+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok inssim.ECToken
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("ectoken: %s %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	if len(tok.Token) != 40 || tok.QR == "" {
		t.Fatalf("token = %+v", tok)
	}
	return tok
}

func TestPersonByECToken(t *testing.T) {
	sim, c, _ := start(t)
	tok := issueToken(t, sim, "110101199003078515")
	id, name, err := c.ResolveVoucher(context.Background(), tok.QR)
	if err != nil {
		t.Fatal(err)
	}
	if id != "110101199003078515" || name != "张三" {
		t.Fatalf("ResolveVoucher = %q %q", id, name)
	}
	p, err := c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertECToken, MdtrtCertNo: tok.Token})
	if err != nil || p.BaseInfo.PsnName != "张三" {
		t.Fatalf("PersonInfo = %+v, %v", p, err)
	}
	// The key=value form some terminals print.
	if id, _, err := c.ResolveVoucher(context.Background(), "ecToken="+tok.Token+"&insuOrg=110100"); err != nil || id != "110101199003078515" {
		t.Fatalf("ResolveVoucher(key=value) = %q, %v", id, err)
	}
	// Someone not insured gets no token.
	resp, err := http.Post(sim.URL()+"/control/ectoken", "application/json", strings.NewReader(`{"id_number":"110101198001010011"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("token for an unknown person: %s", resp.Status)
	}
}

func TestExpiredAndUnknownToken(t *testing.T) {
	sim, c, clk := start(t)
	tok, err := sim.IssueECToken(hissim.DemoPatients[1].IDNumber, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	_, _, err = c.ResolveVoucher(context.Background(), tok.QR)
	wantCode(t, err, ihos.EInvalid, "过期")
	var pe *insurance.PlatformError
	if !errors.As(err, &pe) || pe.Infcode != -1 || pe.Infno != "1101" || len(pe.InfRefMsgID) != 30 {
		t.Fatalf("cause = %#v", pe)
	}

	_, _, err = c.ResolveVoucher(context.Background(), "110100ec00000000000000000000000000000000")
	wantCode(t, err, ihos.EInvalid, "令牌无效")

	_, _, err = c.ResolveVoucher(context.Background(), "  ")
	wantCode(t, err, ihos.EInvalid, "二维码")
}

func TestUnknownPerson(t *testing.T) {
	sim, c, _ := start(t)
	first := "11010119800101001"
	id := first + string(ihos.IDCheckDigit(first))
	if _, ok := sim.Person(id); ok {
		t.Fatal("test ID number is a demo patient")
	}
	_, err := c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: id})
	wantCode(t, err, ihos.EInvalid, "未查询到该人员的参保信息")

	// A malformed ID number never leaves the hospital.
	n := len(sim.Requests())
	_, err = c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: "110101199003078514"})
	wantCode(t, err, ihos.EInvalid, "身份证号码不正确")
	_, err = c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: "09", MdtrtCertNo: "x"})
	wantCode(t, err, ihos.EInvalid, "凭证类型")
	if len(sim.Requests()) != n {
		t.Fatal("invalid queries were sent")
	}
}

func TestSuspendedInsurance(t *testing.T) {
	sim, c, _ := start(t)
	paused, ok := func() (inssim.Insured, bool) {
		for _, p := range sim.Persons() {
			if p.HISID == inssim.PausedHISID {
				return p, true
			}
		}
		return inssim.Insured{}, false
	}()
	if !ok {
		t.Fatal("no suspended person")
	}
	p, err := c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: paused.IDNumber})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.ActiveInsurance(); ok || p.InsuInfo[0].PausInsuDate == "" {
		t.Fatalf("suspended person has insurance in force: %+v", p.InsuInfo)
	}
}

func TestUnavailable(t *testing.T) {
	sim, c, _ := start(t)
	q := insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: "110101199003078515"}

	if err := sim.SetMode(inssim.Mode{Name: inssim.ModeDown}); err != nil {
		t.Fatal(err)
	}
	_, err := c.PersonInfo(context.Background(), q)
	wantCode(t, err, ihos.EUnavailable, "医保系统暂时无法连接")

	// Slow: the client's timeout turns a hung platform into the same error, quickly.
	sim.SetMode(inssim.Mode{Name: inssim.ModeSlow, Delay: 3 * time.Second})
	c.Timeout = 200 * time.Millisecond
	began := time.Now()
	_, err = c.PersonInfo(context.Background(), q)
	wantCode(t, err, ihos.EUnavailable, "医保系统暂时无法连接")
	if el := time.Since(began); el > 2*time.Second {
		t.Fatalf("timeout took %v", el)
	}
	c.Timeout = 5 * time.Second

	// Error: a business refusal, the platform's text shown.
	sim.SetMode(inssim.Mode{Name: inssim.ModeError, Text: "医保中心结算服务维护中"})
	_, err = c.PersonInfo(context.Background(), q)
	wantCode(t, err, ihos.EInvalid, "医保平台返回：医保中心结算服务维护中")

	sim.SetMode(inssim.Mode{Name: inssim.ModeUp})
	if _, err := c.PersonInfo(context.Background(), q); err != nil {
		t.Fatal(err)
	}

	// Nobody listening at all.
	sim.Close()
	_, err = c.PersonInfo(context.Background(), q)
	wantCode(t, err, ihos.EUnavailable, "医保系统暂时无法连接")

	// No address configured.
	_, err = (&insurance.Client{}).Call(context.Background(), "1101", nil, nil)
	wantCode(t, err, ihos.EUnavailable, "医保接口地址")
}

var msgIDPattern = regexp.MustCompile(`^` + testFixmedins + `\d{14}\d{4}$`)

func TestEnvelopeOnTheWire(t *testing.T) {
	sim, c, clk := start(t)
	var logs bytes.Buffer
	c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var exs []insurance.Exchange
	c.Observe = func(_ context.Context, ex insurance.Exchange) { exs = append(exs, ex) }
	c.Fixmedins.PaasID, c.Fixmedins.PaasToken = "paas-test", "not-a-real-token"

	var out json.RawMessage
	resp, err := c.CallWith(context.Background(), insurance.CallOptions{
		Operator: insurance.Operator{Type: insurance.OpterClerk, ID: "0042", Name: "收费员王"},
	}, "1101", map[string]any{"data": insurance.PersonQuery{MdtrtCertType: "02", MdtrtCertNo: "110101199003078515", Certno: "110101199003078515", PsnCertType: "01"}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !msgIDPattern.MatchString(resp.MsgID) || len(resp.InfRefMsgID) != 30 || resp.RefmsgTime == "" || resp.RespondTime == "" {
		t.Fatalf("response = %+v", resp)
	}
	if !strings.Contains(string(out), `"baseinfo"`) {
		t.Fatalf("output = %s", out)
	}

	reqs := sim.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(reqs[0].Body, &env); err != nil {
		t.Fatal(err)
	}
	str := func(k string) string {
		var s string
		json.Unmarshal(env[k], &s)
		return s
	}
	if len(env) != 18 {
		t.Errorf("envelope has %d keys, want 18", len(env))
	}
	want := map[string]string{
		"infno": "1101", "msgid": resp.MsgID, "mdtrtarea_admvs": "110105", "insuplc_admdvs": "",
		"recer_sys_code": "FSI_LOCAL", "dev_no": "KIOSK-01", "infver": "V1.0", "opter_type": "1",
		"opter": "0042", "opter_name": "收费员王", "fixmedins_code": testFixmedins, "fixmedins_name": "北京市示范互联网医院",
		"sign_no": "", "cainfo": "", "signtype": "", "dev_safe_info": "",
		"inf_time": clk.Now().In(ihos.Shanghai).Format("2006-01-02 15:04:05"),
	}
	for k, v := range want {
		if _, ok := env[k]; !ok {
			t.Errorf("envelope lacks %s", k)
		} else if got := str(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := resp.MsgID[12:26]; got != clk.Now().In(ihos.Shanghai).Format("20060102150405") {
		t.Errorf("msgid time %s", got)
	}
	var in struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(env["input"], &in); err != nil || in.Data["mdtrt_cert_type"] != "02" {
		t.Errorf("input = %s (%v)", env["input"], err)
	}

	// Gateway headers: signature = SHA-256(timestamp + token + nonce + timestamp).
	h := reqs[0].Header
	ts, nonce := h.Get("x-tif-timestamp"), h.Get("x-tif-nonce")
	sum := sha256.Sum256([]byte(ts + "not-a-real-token" + nonce + ts))
	if h.Get("x-tif-paasid") != "paas-test" || ts == "" || nonce == "" || h.Get("x-tif-signature") != hex.EncodeToString(sum[:]) {
		t.Errorf("gateway headers = %v", h)
	}

	// The call log masks the ID number, the name and the secrets.
	if len(exs) != 1 || exs[0].MsgID != resp.MsgID || exs[0].InfRefMsgID != resp.InfRefMsgID || exs[0].Infno != "1101" {
		t.Fatalf("exchanges = %+v", exs)
	}
	for _, s := range []string{exs[0].Request, exs[0].Response, logs.String()} {
		if strings.Contains(s, "110101199003078515") || strings.Contains(s, "张三") || strings.Contains(s, "not-a-real-token") {
			t.Errorf("personal data or a secret in the log: %s", s)
		}
	}
	if !strings.Contains(exs[0].Response, "110101**********15") || !strings.Contains(exs[0].Response, `"psn_name":"张*"`) {
		t.Errorf("masked response = %s", exs[0].Response)
	}

	// A caller-chosen msgid is sent as it is (a repeated settlement).
	id := c.NewMsgID()
	resp, err = c.CallWith(context.Background(), insurance.CallOptions{MsgID: id, InsuplcAdmdvs: "110100"}, "1101",
		map[string]any{"data": insurance.PersonQuery{MdtrtCertType: "02", MdtrtCertNo: "110101199003078515"}}, nil)
	if err != nil || resp.MsgID != id || sim.Requests()[1].MsgID != id {
		t.Fatalf("msgid %s: %+v, %v", id, resp, err)
	}
	// Unknown transactions are refused by the simulator with infcode -1.
	_, err = c.Call(context.Background(), "9999", map[string]any{}, nil)
	wantCode(t, err, ihos.EInvalid, "9999")
}

func TestSimulatorRefusesBadEnvelope(t *testing.T) {
	sim, _, _ := start(t)
	for name, body := range map[string]string{
		"not JSON":    `{`,
		"missing key": `{"infno":"1101"}`,
		"bad msgid": `{"infno":"1101","msgid":"123","mdtrtarea_admvs":"110105","insuplc_admdvs":"","recer_sys_code":"","dev_no":"","dev_safe_info":"","cainfo":"","signtype":"",
			"infver":"V1.0","opter_type":"2","opter":"k","opter_name":"k","inf_time":"2026-01-01 00:00:00","fixmedins_code":"H11010500123","fixmedins_name":"x","sign_no":"","input":{}}`,
	} {
		resp, err := http.Post(sim.URL()+insurance.ServicePath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var r insurance.Response
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != 200 || r.Infcode != -1 || r.ErrMsg == "" {
			t.Errorf("%s: %s %+v", name, resp.Status, r)
		}
	}
}

func TestMsgID(t *testing.T) {
	at := time.Date(2026, 3, 7, 1, 2, 3, 0, time.UTC) // 09:02:03 in Beijing
	if got := insurance.FormatMsgID(testFixmedins, at, 12345); got != testFixmedins+"20260307090203"+"2345" {
		t.Fatalf("FormatMsgID = %s", got)
	}
	c := &insurance.Client{Fixmedins: insurance.Institution{Code: testFixmedins}, Now: func() time.Time { return at }}
	seen := map[string]bool{}
	for range 10000 {
		id := c.NewMsgID()
		if len(id) != insurance.MsgIDLen || !msgIDPattern.MatchString(id) || seen[id] {
			t.Fatalf("msgid %q bad or repeated", id)
		}
		if err := insurance.CheckMsgID(id, testFixmedins); err != nil {
			t.Fatal(err)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", testFixmedins + "2026030709020", "H11010500124" + "20260307090203" + "0001", testFixmedins + "20261307090203" + "0001", testFixmedins + "20260307090203" + "00a1"} {
		if insurance.CheckMsgID(bad, testFixmedins) == nil {
			t.Errorf("CheckMsgID(%q) = nil", bad)
		}
	}
}

// jsonKeys returns the JSON keys of v's struct type in order.
func jsonKeys(v any) []string {
	var keys []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// TestFieldNames checks the JSON names against REFERENCE.md's lists, so a
// typo cannot hide behind a simulator that shares the types.
func TestFieldNames(t *testing.T) {
	for _, c := range []struct {
		name  string
		v     any
		exact bool     // the struct has exactly these keys, in this order
		want  []string // REFERENCE.md's names
	}{
		{"request envelope", insurance.Request{}, true, []string{"infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "recer_sys_code", "dev_no", "dev_safe_info", "cainfo", "signtype", "infver", "opter_type", "opter", "opter_name", "inf_time", "fixmedins_code", "fixmedins_name", "sign_no", "input"}},
		{"response envelope", insurance.Response{}, true, []string{"infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg", "output"}},
		{"1101 input", insurance.PersonQuery{}, true, []string{"mdtrt_cert_type", "mdtrt_cert_no", "card_sn", "begntime", "psn_cert_type", "certno", "psn_name"}},
		{"1101 output", insurance.Person{}, true, []string{"baseinfo", "insuinfo", "idetinfo"}},
		{"1101 baseinfo", insurance.BaseInfo{}, false, []string{"psn_no", "gend", "naty", "brdy", "age"}},
		{"1101 insuinfo", insurance.InsuInfo{}, false, []string{"balc", "insutype", "psn_type", "psn_insu_stas", "cvlserv_flag", "insuplc_admdvs", "emp_name"}},
	} {
		got := jsonKeys(c.v)
		if c.exact {
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: keys %v, want %v", c.name, got, c.want)
			}
			continue
		}
		have := map[string]bool{}
		for _, k := range got {
			have[k] = true
		}
		for _, k := range c.want {
			if !have[k] {
				t.Errorf("%s lacks %s", c.name, k)
			}
		}
	}

	// A whole 1101 answer as public samples show it decodes (numbers as
	// numbers or strings, balc with four decimals).
	sample := `{"baseinfo":{"psn_no":"11000000000000000001","psn_cert_type":"01","certno":"110101199003078515","psn_name":"张三","gend":"1","naty":"01","brdy":"1990-03-07","age":35.5},
		"insuinfo":[{"balc":1500.0000,"insutype":"310","psn_type":"11","psn_insu_stas":"1","psn_insu_date":"2010-01-01","paus_insu_date":null,"cvlserv_flag":"0","insuplc_admdvs":"110100","emp_name":"x"},
		{"balc":"12.5","insutype":"390"}],"idetinfo":[{"psn_idet_type":"2301","psn_type_lv":"1","memo":"","begntime":"2020-01-01 00:00:00","endtime":"2099-12-31 00:00:00"}]}`
	var p insurance.Person
	if err := json.Unmarshal([]byte(sample), &p); err != nil {
		t.Fatal(err)
	}
	if p.BaseInfo.Age != "35.5" || p.InsuInfo[0].Balc != 150000 || p.InsuInfo[1].Balc != 1250 || p.IdetInfo[0].PsnIdetType != "2301" {
		t.Fatalf("decoded %+v", p)
	}
}

func TestYuan(t *testing.T) {
	b, _ := json.Marshal(struct {
		A insurance.Yuan `json:"a"`
		B insurance.Yuan `json:"b"`
	}{125680, -5})
	if string(b) != `{"a":1256.80,"b":-0.05}` {
		t.Fatalf("marshal = %s", b)
	}
	for in, want := range map[string]insurance.Yuan{`1256.8`: 125680, `"1256.80"`: 125680, `0`: 0, `null`: 0, `""`: 0, `1500.0000`: 150000} {
		var y insurance.Yuan
		if err := json.Unmarshal([]byte(in), &y); err != nil || y != want {
			t.Errorf("%s → %d, %v; want %d", in, y, err, want)
		}
	}
	for _, in := range []string{`12.345`, `"abc"`, `1e3`} {
		var y insurance.Yuan
		if json.Unmarshal([]byte(in), &y) == nil {
			t.Errorf("%s accepted", in)
		}
	}
	var c insurance.Infcode
	if json.Unmarshal([]byte(`"-1"`), &c) != nil || c != -1 {
		t.Fatalf("infcode = %d", c)
	}
}

func TestMaskJSON(t *testing.T) {
	got := insurance.MaskJSON([]byte(`{"input":{"data":{"certno":"110101199003078515","psn_name":"欧阳娜娜","mdtrt_cert_no":"110100ec0123456789abcdef0123456789abcdef","age":36}},"cainfo":"secret"}`))
	for _, want := range []string{`"certno":"110101**********15"`, `"psn_name":"欧***"`, `"mdtrt_cert_no":"1101********************************cdef"`, `"age":36`, `"cainfo":"******"`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %s", got, want)
		}
	}
	if got := insurance.MaskJSON([]byte("certno=110101199003078515")); strings.Contains(got, "1101011990") {
		t.Errorf("non-JSON kept: %s", got)
	}
}

func TestDemoPersonsMatchHIS(t *testing.T) {
	sim, _, _ := start(t)
	persons := sim.Persons()
	if len(persons) != len(hissim.DemoPatients) {
		t.Fatalf("%d insured, %d HIS demo patients", len(persons), len(hissim.DemoPatients))
	}
	types := map[string]int{}
	for i, p := range persons {
		d := hissim.DemoPatients[i]
		if p.IDNumber != d.IDNumber || p.Name != d.Name || p.SSCardNo != d.InsuranceCard || !ihos.ValidIDNumber(p.IDNumber) {
			t.Fatalf("person %d = %+v, HIS %+v", i, p, d)
		}
		if p.Insutype == insurance.InsutypeResident && p.BalcFen != 0 {
			t.Errorf("resident %s has an account balance", p.HISID)
		}
		types[p.Insutype]++
	}
	if types["310"] < 20 || types["390"] < 10 {
		t.Errorf("insutype mix %v", types)
	}
}

// BenchmarkPersonInfo measures one 1101 by ID number, client to simulator
// over loopback HTTP.
func BenchmarkPersonInfo(b *testing.B) {
	sim, err := inssim.Start(context.Background(), inssim.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	c := &insurance.Client{BaseURL: sim.URL(), Fixmedins: insurance.Institution{Code: testFixmedins, Name: "示范医院", MdtrtareaAdmvs: "110105"},
		Operator: insurance.Operator{Type: insurance.OpterKiosk, ID: "K1", Name: "自助机"}}
	q := insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: "110101199003078515"}
	for b.Loop() {
		if _, err := c.PersonInfo(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}
