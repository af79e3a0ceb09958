package einvoice_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/einvoice"
	"ihos/einvoice/einvsim"
)

// The expected signs were computed outside Go with the shell:
//
//	D=$(printf '%s' '{"busNo":"P20240101","totalAmt":12.50}' | base64 -w0)
//	printf '%s' "appid=WZDCSDW7532610&data=$D&noise=8a5b...&key=b00d...&version=1.0" | md5sum | tr a-f A-F
func TestSign(t *testing.T) {
	for _, c := range []struct{ appid, json, data, noise, key, want string }{
		{"WZDCSDW7532610", `{"busNo":"P20240101","totalAmt":12.50}`, "eyJidXNObyI6IlAyMDI0MDEwMSIsInRvdGFsQW10IjoxMi41MH0=",
			"8a5b0f4c2e6d4f1a9b3c7d2e1f0a4b5c", "b00d5e1a028e9395b9231a23cc", "1DD2A8DD5D677CF8075D8BCC592422A1"},
		{"IHOSDEMO", `{"payer":"张三"}`, "eyJwYXllciI6IuW8oOS4iSJ9",
			"00000000000040008000000000000000", "secret-key", "C3604B213CC491A6ED4A2A4B806EBDD0"},
	} {
		if got := base64.StdEncoding.EncodeToString([]byte(c.json)); got != c.data {
			t.Fatalf("base64(%s) = %s, want %s", c.json, got, c.data)
		}
		if got := einvoice.Sign(c.appid, c.data, c.noise, c.key, "1.0"); got != c.want {
			t.Errorf("Sign(%s) = %s, want %s", c.appid, got, c.want)
		}
		e := einvoice.Envelope{AppID: c.appid, Data: c.data, Noise: c.noise, Version: "1.0", Sign: c.want}
		if !e.Verify(c.appid, c.key) || e.Verify(c.appid, c.key+"x") {
			t.Errorf("Verify wrong for %s", c.appid)
		}
	}
}

func TestAmount(t *testing.T) {
	b, _ := json.Marshal(struct {
		A einvoice.Amount `json:"a"`
		B einvoice.Amount `json:"b"`
	}{1250, 5})
	if string(b) != `{"a":12.50,"b":0.05}` {
		t.Fatalf("marshal = %s", b)
	}
	for in, want := range map[string]int64{`12.5`: 1250, `"12.50"`: 1250, `0.01`: 1, `3`: 300, `1.230`: 123} {
		var a einvoice.Amount
		if err := json.Unmarshal([]byte(in), &a); err != nil || int64(a) != want {
			t.Errorf("unmarshal %s = %d, %v; want %d", in, a, err, want)
		}
	}
	for _, in := range []string{`12.345`, `1e2`, `"abc"`, `0.001`} {
		var a einvoice.Amount
		if err := json.Unmarshal([]byte(in), &a); err == nil {
			t.Errorf("unmarshal %s = %d, want an error", in, a)
		}
	}
}

func TestTime(t *testing.T) {
	tm := time.Date(2024, 3, 5, 1, 2, 3, 45e6, time.UTC) // 09:02:03.045 in Beijing
	s := einvoice.FormatTime(tm)
	if s != "20240305090203045" {
		t.Fatalf("FormatTime = %s", s)
	}
	back, err := einvoice.ParseTime(s)
	if err != nil || !back.Equal(tm) {
		t.Fatalf("ParseTime = %v, %v", back, err)
	}
}

const testKey = "test-key-0123456789"

func start(t *testing.T) (*einvsim.Sim, *einvoice.Client) {
	t.Helper()
	sim, err := einvsim.Start(context.Background(), einvsim.Config{AppID: "IHOSTEST", Key: testKey, Payee: "测试医院"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, &einvoice.Client{BaseURL: sim.ServiceURL(), AppID: "IHOSTEST", Key: testKey, Timeout: 2 * time.Second}
}

func outpatient(busNo string) einvoice.Outpatient {
	return einvoice.Outpatient{
		BusNo: busNo, BusType: "02", Payer: "张三", PlaceCode: "001", Payee: "自助机01", Author: "自助机01",
		TotalAmt: 15680, IDCardNo: "110101199003078515", CardType: "01", CardNo: "P000001",
		MedCareTypeCode: "310", MedicalInsuranceID: "SETL0001",
		FundPay: 9000, AccountPay: 4000, SelfCashPay: 2680,
		PayChannelDetail: []einvoice.PayChannel{{"12", 9000}, {"11", 4000}, {"03", 2680}},
		ChargeDetail: []einvoice.Charge{
			{SortNo: 1, ChargeCode: "01", ChargeName: "西药费", Std: 3840, Number: "2", Amt: 7680},
			{SortNo: 2, ChargeCode: "05", ChargeName: "检查费", Std: 8000, Number: "1", Amt: 8000},
		},
		ListDetail: []einvoice.ListItem{
			{ChargeCode: "01", Code: "X001", Name: "阿莫西林胶囊", Std: 3840, Number: "2", Amt: 7680},
			{ChargeCode: "05", Code: "J001", Name: "胸部正位片", Std: 8000, Number: "1", Amt: 8000},
		},
	}
}

func code(err error) string { return ihos.ErrorCode(err) }

func TestIssueQueryWriteOff(t *testing.T) {
	sim, c := start(t)
	ctx := context.Background()

	b1, err := c.IssueOutpatient(ctx, outpatient("PAY-1"))
	if err != nil {
		t.Fatal(err)
	}
	if b1.BatchCode != "11010121" || b1.No != "0000000001" || len(b1.Random) != 6 || b1.CreatedAt.IsZero() {
		t.Fatalf("bill = %+v", b1)
	}
	if !bytes.HasPrefix(b1.QRImage, []byte("\x89PNG")) || !strings.HasPrefix(b1.QRCode, sim.URL()+"/check?") ||
		b1.QRCode != b1.PictureNetURL || !strings.Contains(b1.QRCode, "random="+b1.Random) {
		t.Fatalf("QR = %q (%d bytes of picture), net %q", b1.QRCode, len(b1.QRImage), b1.PictureNetURL)
	}

	// Idempotent: the same busNo returns the same bill.
	again, err := c.IssueOutpatient(ctx, outpatient("PAY-1"))
	if err != nil || again.No != b1.No || again.Random != b1.Random {
		t.Fatalf("re-issue = %+v, %v; want bill %s", again, err, b1.No)
	}
	// The same busNo with another total is refused.
	o := outpatient("PAY-1")
	o.TotalAmt, o.ChargeDetail[1].Amt, o.PayChannelDetail[2].PayChannelValue = 15000, 7320, 2000
	if _, err := c.IssueOutpatient(ctx, o); code(err) != ihos.EInvalid || !strings.Contains(ihos.ErrorMessage(err), "已开具") {
		t.Fatalf("conflicting re-issue: %v", err)
	}

	b2, err := c.IssueOutpatient(ctx, outpatient("PAY-2"))
	if err != nil || b2.No != "0000000002" {
		t.Fatalf("second bill = %+v, %v", b2, err)
	}
	reg, err := c.IssueRegistration(ctx, outpatient("REG-1"))
	if err != nil || reg.BatchCode != "11010122" || reg.No != "0000000001" {
		t.Fatalf("registration bill = %+v, %v", reg, err)
	}

	q, err := c.Query(ctx, "PAY-1")
	if err != nil || q.No != b1.No || q.Random != b1.Random || q.TotalAmt != 15680 || q.WrittenOff != nil {
		t.Fatalf("query = %+v, %v", q, err)
	}
	if _, err := c.Query(ctx, "PAY-404"); code(err) != ihos.ENotFound {
		t.Fatalf("query unknown: %v", err)
	}

	w := einvoice.WriteOffReq{BillBatchCode: b1.BatchCode, BillNo: b1.No, Reason: "患者退费", Operator: "收费员李", PlaceCode: "001"}
	red, err := c.WriteOff(ctx, w)
	if err != nil || red.BatchCode != b1.BatchCode || red.No != "0000000003" || red.Random == "" || red.QRImage == nil || red.CreatedAt.IsZero() {
		t.Fatalf("write-off = %+v, %v", red, err)
	}
	_, err = c.WriteOff(ctx, w)
	var pe *einvoice.PlatformError
	if code(err) != ihos.EInvalid || !strings.Contains(ihos.ErrorMessage(err), "已冲红") || !errors.As(err, &pe) || pe.Result != einvsim.ResultConflict {
		t.Fatalf("second write-off: %v", err)
	}
	q, err = c.Query(ctx, "PAY-1")
	if err != nil || q.WrittenOff == nil || q.WrittenOff.No != red.No || q.WrittenOff.Random != red.Random {
		t.Fatalf("query after write-off = %+v, %v", q, err)
	}
	w.BillNo = "0000009999"
	if _, err := c.WriteOff(ctx, w); code(err) != ihos.ENotFound {
		t.Fatalf("write-off of an unknown bill: %v", err)
	}

	// The check page and the picture.
	page := get(t, b1.QRCode)
	for _, want := range []string{"医疗门诊收费票据（电子）", "已冲红", "张三", "156.80", "西药费", "测试医院"} {
		if !strings.Contains(page, want) {
			t.Errorf("check page lacks %q", want)
		}
	}
	if p := get(t, sim.URL()+"/bills/"+b1.BatchCode+"/"+b1.No+".png"); !strings.HasPrefix(p, "\x89PNG") {
		t.Errorf("picture is not a PNG")
	}
	resp, err := http.Get(strings.Replace(b2.QRCode, "random="+b2.Random, "random=000000", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("check page with a wrong random: HTTP %d", resp.StatusCode)
	}
	if n := len(sim.Bills()); n != 3 {
		t.Errorf("simulator holds %d bills, want 3", n)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return string(b)
}

func TestValidation(t *testing.T) {
	sim, c := start(t)
	ctx := context.Background()
	o := outpatient("PAY-V")
	o.PayChannelDetail[2].PayChannelValue = 2600 // 80 fen short
	_, err := c.IssueOutpatient(ctx, o)
	var ie *ihos.Error
	if !errors.As(err, &ie) || ie.Code != ihos.EInvalid || !strings.Contains(ie.Fields["payChannelDetail"], "不一致") {
		t.Fatalf("short pay channels: %v", err)
	}
	// The simulator checks the sum too: send the same request past the
	// client's check.
	o.BusDateTime = einvoice.FormatTime(time.Now())
	err = c.Call(ctx, einvoice.ServiceOutpatient, o, nil)
	if code(err) != ihos.EInvalid || !strings.Contains(ihos.ErrorMessage(err), "payChannelDetail") {
		t.Fatalf("simulator on short pay channels: %v", err)
	}
	// An amount with three decimals is refused by the simulator.
	raw := map[string]any{"busNo": "X", "totalAmt": json.Number("1.234")}
	if err := c.Call(ctx, einvoice.ServiceOutpatient, raw, nil); code(err) != ihos.EInvalid {
		t.Fatalf("three decimals: %v", err)
	}
	if err := c.Call(ctx, einvoice.ServiceHospitalized, raw, nil); code(err) != ihos.EInvalid {
		t.Fatalf("hospitalized: %v", err)
	}
	if n := len(sim.Bills()); n != 0 {
		t.Fatalf("%d bills issued from invalid requests", n)
	}
}

func TestBadCredentials(t *testing.T) {
	sim, c := start(t)
	ctx := context.Background()
	bad := *c
	bad.Key = "wrong"
	_, err := bad.IssueOutpatient(ctx, outpatient("PAY-S"))
	// The platform refuses the sign; its answer is signed with the real
	// key, which the client cannot verify either: outcome unknown.
	if code(err) != ihos.EUnavailable || !strings.Contains(ihos.ErrorMessage(err), "签名验证失败") {
		t.Fatalf("wrong key: %v", err)
	}
	bad = *c
	bad.AppID = "NOBODY"
	var pe *einvoice.PlatformError
	if _, err := bad.IssueOutpatient(ctx, outpatient("PAY-S")); code(err) != ihos.EInvalid || !errors.As(err, &pe) || pe.Result != einvsim.ResultBadAppID {
		t.Fatalf("unknown appid: %v", err)
	}

	// A hand-made request with a bad sign: the answer is signed and says so.
	env, _ := einvoice.Seal("IHOSTEST", testKey, einvoice.QueryReq{BusNo: "X"})
	env.Sign = strings.Repeat("0", 32)
	ans := post(t, sim.ServiceURL()+einvoice.ServiceQuery, env)
	if !ans.Verify("IHOSTEST", testKey) {
		t.Fatalf("answer not signed: %+v", ans)
	}
	if rd := decodeResult(t, ans); rd.Result != einvsim.ResultBadSign {
		t.Fatalf("bad sign answered %+v", rd)
	}

	// A replayed request (same noise) is refused.
	env, _ = einvoice.Seal("IHOSTEST", testKey, einvoice.QueryReq{BusNo: "X"})
	post(t, sim.ServiceURL()+einvoice.ServiceQuery, env)
	if rd := decodeResult(t, post(t, sim.ServiceURL()+einvoice.ServiceQuery, env)); rd.Result != einvsim.ResultReplay {
		t.Fatalf("replay answered %+v", rd)
	}
	if n := len(sim.Bills()); n != 0 {
		t.Fatalf("%d bills issued", n)
	}
}

func post(t *testing.T, url string, env einvoice.Envelope) einvoice.Envelope {
	t.Helper()
	b, _ := json.Marshal(env)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans einvoice.Envelope
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatal(err)
	}
	return ans
}

func decodeResult(t *testing.T, ans einvoice.Envelope) einvoice.ResultData {
	t.Helper()
	data, err := ans.Decode()
	if err != nil {
		t.Fatal(err)
	}
	var rd einvoice.ResultData
	if err := json.Unmarshal(data, &rd); err != nil {
		t.Fatal(err)
	}
	return rd
}

func TestModes(t *testing.T) {
	sim, c := start(t)
	ctx := context.Background()

	sim.SetMode(einvsim.Mode{Name: einvsim.ModeDown})
	_, err := c.IssueOutpatient(ctx, outpatient("PAY-M"))
	if code(err) != ihos.EUnavailable || ihos.ErrorMessage(err) != "财政电子票据平台暂时无法连接" {
		t.Fatalf("down: %v", err)
	}

	sim.SetMode(einvsim.Mode{Name: einvsim.ModeError, Text: "开票点未启用"})
	if _, err := c.IssueOutpatient(ctx, outpatient("PAY-M")); code(err) != ihos.EInvalid || !strings.Contains(ihos.ErrorMessage(err), "开票点未启用") {
		t.Fatalf("error mode: %v", err)
	}

	// Slow beyond the client's timeout: unknown outcome, and the bill is in
	// fact issued once the platform gets to it; the caller finds it by busNo.
	sim.SetMode(einvsim.Mode{Name: einvsim.ModeSlow, Delay: 300 * time.Millisecond})
	slow := *c
	slow.Timeout = 100 * time.Millisecond
	if _, err := slow.IssueOutpatient(ctx, outpatient("PAY-M")); code(err) != ihos.EUnavailable {
		t.Fatalf("slow: %v", err)
	}
	sim.SetMode(einvsim.Mode{Name: einvsim.ModeUp})
	if _, err := c.Query(ctx, "PAY-M"); code(err) != ihos.ENotFound {
		// The simulator drops a request whose client gave up during the
		// delay, so here the answer is "not issued".
		t.Fatalf("query after slow: %v", err)
	}
	if b, err := c.IssueOutpatient(ctx, outpatient("PAY-M")); err != nil || b.No != "0000000001" {
		t.Fatalf("issue after slow = %+v, %v", b, err)
	}

	// Nobody listening.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	gone := *c
	gone.BaseURL = dead.URL + "/api/medical"
	if _, err := gone.Query(ctx, "PAY-M"); code(err) != ihos.EUnavailable {
		t.Fatalf("no server: %v", err)
	}
}

// TestUnsignedAnswer: a platform that does not sign its answers is
// accepted; a forged sign is not.
func TestUnsignedAnswer(t *testing.T) {
	answer := func(sign bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			msg, _ := json.Marshal(einvoice.IssueAnswer{BillBatchCode: "33010120", BillNo: "0000000042", Random: "abc123",
				CreateTime: "20240305090203045", BillQRCode: "http://example.invalid/qr?x=1"})
			data, _ := json.Marshal(einvoice.NewResult(einvoice.ResultOK, msg))
			env := einvoice.Envelope{Data: base64.StdEncoding.EncodeToString(data), Noise: einvoice.NewNoise(), Version: "1.0"}
			if sign {
				env.Sign = strings.Repeat("A", 32)
			}
			json.NewEncoder(w).Encode(env)
		}
	}
	for _, forged := range []bool{false, true} {
		srv := httptest.NewServer(answer(forged))
		c := &einvoice.Client{BaseURL: srv.URL + "/", AppID: "A", Key: "K"}
		b, err := c.Query(context.Background(), "X")
		srv.Close()
		if forged {
			if code(err) != ihos.EUnavailable {
				t.Errorf("forged sign: %v", err)
			}
			continue
		}
		if err != nil || b.No != "0000000042" || b.QRCode != "http://example.invalid/qr?x=1" || b.QRImage != nil || b.BusNo != "X" {
			t.Errorf("unsigned answer = %+v, %v", b, err)
		}
	}
}
