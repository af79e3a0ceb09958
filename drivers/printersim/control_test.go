package printersim

import (
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"ihos/drivers/escpos"
)

func TestPrintedAndPNG(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	var raw bytes.Buffer
	if err := receipt(io.MultiWriter(c, &raw), "张三"); err != nil {
		t.Fatal(err)
	}
	waitTickets(t, s, 1)
	p := s.Printed()
	if len(p) != 1 || p[0].Seq != 1 || p[0].Source != SourceTCP || !bytes.Equal(p[0].Data, raw.Bytes()) {
		t.Fatalf("printed %+v", p)
	}
	b, err := s.PNG(0, escpos.Width58mm)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != escpos.Width58mm {
		t.Fatalf("PNG: %v %v", img.Bounds(), err)
	}
	if _, err := s.PNG(1, escpos.Width58mm); err == nil {
		t.Error("PNG of a ticket that does not exist")
	}
}

func TestOnPrint(t *testing.T) {
	s := startSim(t)
	got := make(chan Printed, 1)
	s.OnPrint(func(p Printed) { got <- p })
	c := dial(t, s)
	if err := receipt(c, "张三"); err != nil {
		t.Fatal(err)
	}
	p := <-got
	checkReceipt(t, p.Ticket, "张三")
}

func do(t *testing.T, h http.Handler, method, target string, body url.Values, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestControlHandler(t *testing.T) {
	s := startSim(t)
	h := s.Handler(escpos.Width80mm)

	w := do(t, h, "GET", "/", nil, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "还没有收到票据") {
		t.Fatalf("empty page: %d %s", w.Code, w.Body)
	}

	c := dial(t, s)
	if err := receipt(c, "张三"); err != nil {
		t.Fatal(err)
	}
	if err := receipt(c, "李四"); err != nil {
		t.Fatal(err)
	}
	waitTickets(t, s, 2)

	w = do(t, h, "GET", "/tickets", nil, nil)
	var ts []TicketJSON
	if err := json.Unmarshal(w.Body.Bytes(), &ts); err != nil || w.Code != 200 {
		t.Fatalf("/tickets: %d %v %s", w.Code, err, w.Body)
	}
	if len(ts) != 2 || ts[0].N != 2 || ts[1].N != 1 || ts[0].Lines[1] != "李四" ||
		!slices.Equal(ts[0].QRCodes, []string{"REG-0001"}) || ts[0].PNG != "tickets/2.png" || ts[0].Source != "tcp" {
		t.Fatalf("/tickets = %+v", ts)
	}

	w = do(t, h, "GET", "/tickets/2.png", nil, nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("png: %d %s", w.Code, w.Body)
	}
	img, err := png.Decode(w.Body)
	if err != nil || img.Bounds().Dx() != escpos.Width80mm {
		t.Fatalf("png: %v %v", err, img)
	}
	for _, bad := range []string{"/tickets/3.png", "/tickets/0.png", "/tickets/x.png", "/tickets/1.gif"} {
		if w := do(t, h, "GET", bad, nil, nil); w.Code != 404 {
			t.Errorf("%s: %d", bad, w.Code)
		}
	}

	w = do(t, h, "GET", "/", nil, nil)
	body := w.Body.String()
	for _, want := range []string{"打印机模拟器", "第 2 张", "李四", "REG-0001", `src="tickets/2.png"`, "缺纸"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Index(body, "第 2 张") > strings.Index(body, "第 1 张") {
		t.Error("page not newest first")
	}

	w = do(t, h, "POST", "/mode", url.Values{"mode": {"paper_out"}}, nil)
	var st State
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || w.Code != 200 || st.Mode != PaperOut || st.ModeLabel != "缺纸" {
		t.Fatalf("POST /mode: %d %s", w.Code, w.Body)
	}
	if s.Mode() != PaperOut {
		t.Fatalf("mode %s", s.Mode())
	}
	// httptest requests are for host example.com.
	w = do(t, h, "POST", "/mode", url.Values{"mode": {"online"}}, map[string]string{"Origin": "http://evil.test"})
	if w.Code != http.StatusForbidden || s.Mode() != PaperOut {
		t.Fatalf("foreign origin: %d, mode %s", w.Code, s.Mode())
	}
	w = do(t, h, "POST", "/mode", url.Values{"mode": {"online"}, "redirect": {"1"}}, map[string]string{"Origin": "http://example.com"})
	if w.Code != http.StatusSeeOther || s.Mode() != Online {
		t.Fatalf("form POST: %d, mode %s", w.Code, s.Mode())
	}
	if w := do(t, h, "POST", "/mode", url.Values{"mode": {"broken"}}, nil); w.Code != 400 || !strings.Contains(w.Body.String(), "模式必须是") {
		t.Errorf("bad mode: %d %s", w.Code, w.Body)
	}

	w = do(t, h, "GET", "/state", nil, nil)
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || st.Tickets != 2 || st.TCP != s.Addr() || st.WidthDots != escpos.Width80mm || st.Mode != Online {
		t.Fatalf("/state: %s", w.Body)
	}
}
