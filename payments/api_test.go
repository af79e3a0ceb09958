package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"ihos"
)

// testAuthorize lets requests carrying "Bearer ok" through as a console user,
// scoped to department X-Dept when that header is set.
func testAuthorize(r *http.Request, perm string) (context.Context, error) {
	if r.Header.Get("Authorization") != "Bearer ok" {
		return nil, ihos.Errorf(ihos.EUnauthorized, "请先登录")
	}
	if perm != "payments.read" && perm != "payments.write" {
		return nil, ihos.Errorf(ihos.EForbidden, "无权限")
	}
	a := ihos.Actor{UserID: "u1", Username: "admin"}
	if d := r.Header.Get("X-Dept"); d != "" {
		a.Scoped, a.DepartmentID = true, d
	}
	return ihos.WithActor(r.Context(), a), nil
}

func TestAdminAPI(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		type spec struct {
			bt, ch, dept, doc, pat string
			total                  int64
			pay                    bool
		}
		specs := []spec{
			{ihos.PayConsultation, ihos.ChannelSelfPay, "D1", "DOC1", "P1", 1000, true},
			{ihos.PayConsultation, ihos.ChannelSelfPay, "D1", "DOC2", "P2", 2000, false},
			{ihos.PayPrescription, ihos.ChannelInsuranceMobile, "D2", "DOC3", "P1", 3000, true},
			{ihos.PayDeliveryFee, ihos.ChannelSelfPay, "D2", "DOC3", "P3", 800, false},
			{ihos.PayNursingOrder, ihos.ChannelSelfPay, "D3", "DOC4", "P3", 5000, true},
		}
		e.ins.split = ihos.Split{Fund: 2000, Account: 500, Cash: 500}
		var ids []string
		for i, s := range specs {
			e.clock.Add(time.Hour)
			var pre *ihos.Split
			if s.ch != ihos.ChannelSelfPay {
				pre = &e.ins.split
			}
			p, err := e.svc.Create(bg, NewPayment{HospitalID: "H1", BusinessType: s.bt, BusinessID: fmt.Sprint("B", i), PatientID: s.pat,
				DoctorID: s.doc, DepartmentID: s.dept, Channel: s.ch, Total: s.total, PreSettlement: pre})
			if err != nil {
				t.Fatal(err)
			}
			if s.pay {
				r, err := e.svc.Pay(bg, p.ID, PayRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.svc.ApplyNotify(bg, paidNotify(r.Payment, e.ch.pay(p.OutTradeNo), e.clock.Now())); err != nil {
					t.Fatal(err)
				}
			}
			ids = append(ids, p.ID)
		}
		mux := http.NewServeMux()
		e.svc.AdminRoutes(mux, testAuthorize)
		e.svc.RefundRoutes(mux, testAuthorize)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		get := func(path string, hdr map[string]string, v any) int {
			t.Helper()
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			req.Header.Set("Authorization", "Bearer ok")
			for k, val := range hdr {
				req.Header.Set(k, val)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if v != nil {
				json.NewDecoder(resp.Body).Decode(v)
			}
			return resp.StatusCode
		}
		list := func(q string, hdr map[string]string) Page {
			t.Helper()
			var pg Page
			if code := get("/api/admin/payments?"+q, hdr, &pg); code != 200 {
				t.Fatalf("%s: status %d", q, code)
			}
			return pg
		}
		idsOf := func(pg Page) string {
			var out []string
			for _, it := range pg.Items {
				for i, id := range ids {
					if id == it.ID {
						out = append(out, fmt.Sprint(i))
					}
				}
			}
			return strings.Join(out, ",")
		}
		base := e.clock.Now().Add(-5 * time.Hour) // created at base+1h … base+5h
		cases := []struct{ q, want string }{
			{"", "4,3,2,1,0"},
			{"status=paid", "4,2,0"},
			{"status=created", "3,1"},
			{"channel=insurance_mobile", "2"},
			{"patient=P1", "2,0"},
			{"doctor=DOC3", "3,2"},
			{"department=D2", "3,2"},
			{"business_type=consultation", "1,0"},
			{"from=" + url.QueryEscape(base.Add(90*time.Minute).Format(time.RFC3339)) + "&to=" + url.QueryEscape(base.Add(210*time.Minute).Format(time.RFC3339)), "2,1"},
			{"page=2&page_size=2", "2,1"},
			{"page=3&page_size=2", "0"},
			{"status=paid&department=D1", "0"},
		}
		for _, c := range cases {
			if got := idsOf(list(c.q, nil)); got != c.want {
				t.Errorf("%q: got %s, want %s", c.q, got, c.want)
			}
		}
		pg := list("page_size=2", nil)
		if pg.Total != 5 || pg.Page != 1 || pg.PageSize != 2 || len(pg.Items) != 2 {
			t.Fatalf("paging: %+v", pg)
		}
		ins := list("channel=insurance_mobile", nil).Items[0]
		if ins.Total != 3000 || ins.FundPay != 2000 || ins.AccountPay != 500 || ins.CashPay != 500 || ins.StatusLabel != "已支付" || ins.PaidAt.IsZero() {
			t.Fatalf("insurance item: %+v", ins.Payment)
		}
		// Department-scoped staff see their department only.
		if got := idsOf(list("", map[string]string{"X-Dept": "D3"})); got != "4" {
			t.Fatalf("scoped list: %s", got)
		}
		for _, q := range []string{"from=yesterday", "status=bogus", "channel=cash", "page_size=5000", "page=0"} {
			var body struct{ Code string }
			if code := get("/api/admin/payments?"+q, nil, &body); code != 400 || body.Code != ihos.EInvalid {
				t.Errorf("%q: %d %s", q, code, body.Code)
			}
		}
		var d Detail
		if code := get("/api/admin/payments/"+ids[0], nil, &d); code != 200 || d.ID != ids[0] || len(d.Events) != 3 || d.Events[2].ToStatus != ihos.PaymentPaid {
			t.Fatalf("detail: %d %+v", code, d)
		}
		if code := get("/api/admin/payments/"+ids[0], map[string]string{"X-Dept": "D3"}, nil); code != 404 {
			t.Fatalf("detail outside scope: %d", code)
		}
		if code := get("/api/admin/payments/nope", nil, nil); code != 404 {
			t.Fatalf("missing: %d", code)
		}
		req, _ := http.NewRequest("GET", srv.URL+"/api/admin/payments", nil)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
			t.Fatalf("no token: %v %v", resp.StatusCode, err)
		}
		// A staff refund through the API, then the detail shows it.
		body := strings.NewReader(`{"amount": 400, "reason": "部分退费"}`)
		req, _ = http.NewRequest("POST", srv.URL+"/api/admin/payments/"+ids[4]+"/refunds", body)
		req.Header.Set("Authorization", "Bearer ok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("refund: %v %v", resp.StatusCode, err)
		}
		get("/api/admin/payments/"+ids[4], nil, &d)
		if len(d.Refunds) != 1 || d.Refunds[0].Amount != 400 || d.Refunded != 400 || d.Status != ihos.PaymentPartiallyRefunded {
			t.Fatalf("after refund: %+v", d)
		}
	})
}

func TestNotifyHandler(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 700, nil)
		r, _ := e.svc.Pay(bg, p.ID, PayRequest{})
		txid := e.ch.pay(p.OutTradeNo)
		parse := func(req *http.Request, body []byte) (Notify, error) {
			if req.Header.Get("Wechatpay-Signature") != "good" {
				return Notify{}, errors.New("bad signature")
			}
			var n Notify
			err := json.Unmarshal(body, &n)
			return n, err
		}
		srv := httptest.NewServer(e.svc.NotifyHandler(parse))
		defer srv.Close()
		post := func(sig string, n Notify) int {
			b, _ := json.Marshal(n)
			req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(string(b)))
			req.Header.Set("Wechatpay-Signature", sig)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		n := paidNotify(r.Payment, txid, e.clock.Now())
		if code := post("forged", n); code != 401 {
			t.Fatalf("forged: %d", code)
		}
		wantStatus(t, e.get(t, p.ID), ihos.PaymentPaying)
		bad := n
		bad.Amount = 1
		bad.ID = "x"
		if code := post("good", bad); code != 400 {
			t.Fatalf("amount mismatch: %d", code)
		}
		if code := post("good", n); code != 204 {
			t.Fatalf("good: %d", code)
		}
		if code := post("good", n); code != 204 {
			t.Fatalf("duplicate: %d", code)
		}
		wantStatus(t, e.get(t, p.ID), ihos.PaymentPaid)
		var outcomes []string
		rows, _ := e.db.Query(`SELECT outcome FROM payment_notifies ORDER BY received_at, outcome`)
		for rows.Next() {
			var o string
			rows.Scan(&o)
			outcomes = append(outcomes, o)
		}
		rows.Close()
		if strings.Join(outcomes, ",") != "applied,duplicate,rejected_amount,rejected_signature" {
			t.Fatalf("notify log: %v", outcomes)
		}
	})
}
