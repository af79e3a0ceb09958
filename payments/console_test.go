package payments

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/console"
	"ihos/internal/export/exporttest"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// exportServer serves the export routes with testAuthorize (api_test.go).
func exportServer(t *testing.T, db *sqldb.DB) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	s := &Service{DB: db}
	s.AdminRoutes(mux, testAuthorize)
	s.ExportRoutes(mux, testAuthorize)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

var okAuth = map[string]string{"Authorization": "Bearer ok"}

func TestOrderExport(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		statFixture(t, db)
		srv := exportServer(t, db)

		// CSV: every matching order (deleted left out), newest first, in yuan.
		resp, body := get(t, srv.URL+"/api/admin/payments/export?format=csv&from=2025-03-10&to=2025-03-12", okAuth)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; ") || !strings.Contains(cd, "filename*=UTF-8''%E6%94%AF%E4%BB%98%E8%AE%A2%E5%8D%95_") || !strings.HasSuffix(cd, ".csv") {
			t.Errorf("content disposition %q", cd)
		}
		if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
			t.Fatal("no BOM")
		}
		recs, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1+7 { // p1–p6 and p9 created in the period (p5, p6 took no money but are orders)
			t.Fatalf("%d records: %q", len(recs), recs)
		}
		if h := strings.Join(recs[0], ","); h != "下单时间,支付时间,订单号,业务类型,业务单号,摘要,患者,医生,科室,支付方式,订单状态,订单总额(元),医保基金(元),个人账户(元),现金(元),已退款(元),渠道交易号" {
			t.Errorf("header %s", h)
		}
		if recs[1][2] != "Tp9" { // created on the 12th, paid on the 13th
			t.Errorf("newest %q", recs[1])
		}
		first := recs[2] // p4
		if first[0] != "2025-03-12 11:58:00" || first[1] != "2025-03-12 12:00:00" || first[2] != "Tp4" || first[3] != "挂号费" ||
			first[8] != "D2" || first[9] != "医保电子凭证" || first[10] != "已退款" ||
			strings.Join(first[11:16], " ") != "15.00 10.00 3.00 2.00 15.00" || first[16] != "WXp4" {
			t.Errorf("first row %q", first)
		}
		last := recs[len(recs)-1] // p1
		if last[2] != "Tp1" || last[8] != "内科" || last[11] != "10.00" || last[9] != "自费支付" {
			t.Errorf("last row %q", last)
		}

		// Filters apply; a scoped actor only gets their department.
		_, body = get(t, srv.URL+"/api/admin/payments/export?from=2025-03-10&to=2025-03-12&status=paid", okAuth)
		if recs, _ := csv.NewReader(bytes.NewReader(body[3:])).ReadAll(); len(recs) != 1+3 {
			t.Errorf("paid only: %q", recs)
		}
		_, body = get(t, srv.URL+"/api/admin/payments/export?format=csv", map[string]string{"Authorization": "Bearer ok", "X-Dept": "D2"})
		recs, _ = csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
		if len(recs) != 1+3 {
			t.Errorf("scoped to D2: %q", recs)
		}
		for _, r := range recs[1:] {
			if r[8] != "D2" {
				t.Errorf("scoped export has %q", r)
			}
		}

		// XLSX: the same rows, amounts as numbers.
		resp, body = get(t, srv.URL+"/api/admin/payments/export?format=xlsx&from=2025-03-10&to=2025-03-12", okAuth)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
			t.Fatalf("xlsx: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		names, sheets := exporttest.ReadXLSX(t, body)
		if len(names) != 1 || names[0] != "支付订单" {
			t.Fatalf("sheets %q", names)
		}
		if c := sheets[0]["L3"]; c.Text != "15.00" || !c.Number {
			t.Errorf("L3 %+v", c)
		}
		if c := sheets[0]["I7"]; c.Text != "内科" {
			t.Errorf("I7 %+v", c)
		}
		if _, ok := sheets[0]["A9"]; ok {
			t.Error("more rows than orders")
		}

		// Refusals: no login, a bad format, a bad filter.
		if resp, _ := get(t, srv.URL+"/api/admin/payments/export", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous: %d", resp.StatusCode)
		}
		if resp, _ := get(t, srv.URL+"/api/admin/payments/export?format=pdf", okAuth); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("pdf: %d", resp.StatusCode)
		}
		if resp, _ := get(t, srv.URL+"/api/admin/payments/export?status=nope", okAuth); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("bad status: %d", resp.StatusCode)
		}
		// The detail route still answers beside the export.
		if resp, body := get(t, srv.URL+"/api/admin/payments/p1", okAuth); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"id":"p1"`) {
			t.Errorf("detail: %d %s", resp.StatusCode, body)
		}

		// Exports are audited.
		entries, _, err := audit.List(context.Background(), db, audit.Filter{Resource: "payments", Action: "export"})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 4 || !strings.Contains(entries[0].Summary, "导出支付订单 XLSX（7 条") || entries[0].ActorName != "admin" {
			t.Errorf("audit %+v", entries)
		}
	})
}

func TestStatsExport(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		statFixture(t, db)
		srv := exportServer(t, db)
		resp, body := get(t, srv.URL+"/api/admin/payments/stats/export?format=csv&from=2025-03-10&to=2025-03-12", okAuth)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.HasSuffix(cd, "_2025-03-10%E8%87%B32025-03-12.csv") {
			t.Errorf("content disposition %q", cd)
		}
		r := csv.NewReader(bytes.NewReader(body[3:]))
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		text := map[string]bool{}
		for _, rec := range recs {
			text[strings.Join(rec, ",")] = true
		}
		for _, want := range []string{
			"汇总", "统计区间,笔数,订单总额(元),医保基金(元),个人账户(元),现金(元),已退款(元),净收入(元)",
			"2025-03-10 至 2025-03-12,4,75.00,30.00,8.00,37.00,20.00,55.00",
			"按日", "2025-03-10 周一,2,40.00,20.00,5.00,15.00,0.00,40.00", "2025-03-11 周二,1,20.00,0.00,0.00,20.00,5.00,15.00",
			"按科室", "内科,2,40.00,20.00,5.00,15.00,0.00,40.00", "D2,2,35.00,10.00,3.00,22.00,20.00,15.00",
			"按支付方式", "医保移动支付,1,30.00,20.00,5.00,5.00,0.00,30.00",
			"按业务类型", "处方,1,30.00,20.00,5.00,5.00,0.00,30.00",
			"合计,4,75.00,30.00,8.00,37.00,20.00,55.00",
		} {
			if !text[want] {
				t.Errorf("no line %q in\n%s", want, body)
			}
		}

		resp, body = get(t, srv.URL+"/api/admin/payments/stats/export?format=xlsx&from=2025-03-10&to=2025-03-12", okAuth)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("xlsx status %d", resp.StatusCode)
		}
		names, sheets := exporttest.ReadXLSX(t, body)
		if strings.Join(names, " ") != "汇总 按日 按科室 按支付方式 按业务类型" {
			t.Fatalf("sheets %q", names)
		}
		if c := sheets[0]["C2"]; c.Text != "75.00" || !c.Number {
			t.Errorf("summary total %+v", c)
		}
		if c := sheets[1]["A5"]; c.Text != "合计" { // three days, then the total
			t.Errorf("days A5 %+v", c)
		}
		if resp, _ := get(t, srv.URL+"/api/admin/payments/stats/export?from=2020-01-01&to=2025-01-01", okAuth); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("five years: %d", resp.StatusCode)
		}
	})
}

// TestConsolePages parses the page templates into the console and reads the
// pages' data as a request would.
func TestConsolePages(t *testing.T) {
	db := sqldbtest.SQLite(t)
	statFixture(t, db)
	s := &Service{DB: db}
	c := console.New(nil, nil, "test")
	orders, stats := s.Page(), s.StatsPage()
	c.AddPage(orders) // panics on a template error
	c.AddPage(stats)
	if orders.Perm != "payments.read" || stats.Perm != "payments.read" || orders.Title != "支付订单查询" || stats.Title != "医保运营统计" {
		t.Errorf("pages %s/%s %s/%s", orders.Title, orders.Perm, stats.Title, stats.Perm)
	}
	req := func(url string) *http.Request {
		r := httptest.NewRequest("GET", url, nil)
		return r.WithContext(ihos.WithActor(r.Context(), ihos.Actor{UserID: "u1", Username: "admin"}))
	}

	d, err := orders.Data(req("/console/x/payments?status=paid&page=1"))
	if err != nil {
		t.Fatal(err)
	}
	data := d.(map[string]any)
	rows := data["Rows"].([]orderRow)
	if data["Total"] != 5 || len(rows) != 5 || rows[0].ID != "p7" || rows[len(rows)-1].DepartmentName != "内科" {
		t.Errorf("paid orders: total %v, rows %+v", data["Total"], rows)
	}
	if rows[0].StatusClass != "on" || !strings.Contains(rows[0].DetailURL, "id=p7") || !strings.Contains(rows[0].DetailURL, "status=paid") {
		t.Errorf("row %+v", rows[0])
	}
	if data["CSV"] != "/api/admin/payments/export?format=csv&status=paid" {
		t.Errorf("csv link %v", data["CSV"])
	}
	if opts := data["Options"].(map[string][]admin.Option); len(opts["Departments"]) != 1 || opts["Departments"][0].Label != "内科" || len(opts["Statuses"]) != 8 {
		t.Errorf("options %+v", opts)
	}

	d, err = orders.Data(req("/console/x/payments?status=bogus"))
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := d.(map[string]any)["Error"].(string); msg != "查询条件有误：状态无效" {
		t.Errorf("bad filter message %q", msg)
	}

	d, err = orders.Data(req("/console/x/payments?id=p4&status=refunded"))
	if err != nil {
		t.Fatal(err)
	}
	data = d.(map[string]any)
	if det := data["Detail"].(orderRow); det.ID != "p4" || det.ChannelLabel != "医保电子凭证" || data["ListURL"] != "/console/x/payments?status=refunded" {
		t.Errorf("detail %+v, back to %v", det, data["ListURL"])
	}
	if _, err := orders.Data(req("/console/x/payments?id=nope")); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Errorf("unknown id: %v", err)
	}

	d, err = stats.Data(req("/console/x/payment_stats?from=2025-03-10&to=2025-03-12"))
	if err != nil {
		t.Fatal(err)
	}
	data = d.(map[string]any)
	if st := data["Stats"].(*Stats); st.Overall.Count != 4 || len(st.Days) != 3 {
		t.Errorf("stats %+v", st.Overall)
	}
	if data["XLSX"] != "/api/admin/payments/stats/export?format=xlsx&from=2025-03-10&to=2025-03-12" {
		t.Errorf("stats xlsx link %v", data["XLSX"])
	}
	d, err = stats.Data(req("/console/x/payment_stats?from=2025-03-12&to=2025-03-10"))
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := d.(map[string]any)["Error"].(string); msg != "结束日期不能早于开始日期" {
		t.Errorf("reversed period message %q", msg)
	}
}
