package simulate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	m, err := Mode{Name: Slow}.Check("繁忙")
	if err != nil || m.Delay != DefaultDelay {
		t.Errorf("slow: %+v %v", m, err)
	}
	m, err = Mode{Name: Error}.Check("繁忙")
	if err != nil || m.Text != "繁忙" {
		t.Errorf("error: %+v %v", m, err)
	}
	if m, err = (Mode{Name: "split"}).Check("", "split"); err != nil || m.Delay != 0 {
		t.Errorf("own mode: %+v %v", m, err)
	}
	_, err = Mode{Name: "x"}.Check("", "a", "b")
	if err == nil || err.Error() != `unknown mode "x": want up, down, slow, error, a or b` {
		t.Errorf("unknown: %v", err)
	}
}

func TestHold(t *testing.T) {
	w := httptest.NewRecorder()
	if Hold(w, httptest.NewRequest("POST", "/", strings.NewReader("{}")), Mode{Name: Down}, "停机") {
		t.Error("down: not held")
	}
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "停机") {
		t.Errorf("down: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
	start := time.Now()
	if !Hold(httptest.NewRecorder(), r, Mode{Name: Slow, Delay: 20 * time.Millisecond}, "") || time.Since(start) < 20*time.Millisecond {
		t.Error("slow: did not wait")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Hold(httptest.NewRecorder(), r.WithContext(ctx), Mode{Name: Slow, Delay: time.Hour}, "") {
		t.Error("slow: a client that gave up is still answered")
	}
}

func TestModeHandler(t *testing.T) {
	var got Mode
	h := ModeHandler(func(m Mode) error { got = m; return nil }, func(w http.ResponseWriter, r *http.Request) {
		JSON(w, http.StatusOK, got.JSON())
	})
	w := httptest.NewRecorder()
	h(w, httptest.NewRequest("POST", "/control/mode", strings.NewReader(`{"mode":"slow","delay_ms":1500}`)))
	if got.Name != Slow || got.Delay != 1500*time.Millisecond || w.Body.String() != `{"mode":"slow","delay_ms":1500}`+"\n" {
		t.Errorf("%+v %s", got, w.Body)
	}
	w = httptest.NewRecorder()
	h(w, httptest.NewRequest("POST", "/control/mode", strings.NewReader(`{`)))
	if w.Code != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", w.Code)
	}
}

// A Switch fills the error text in and refuses an unknown mode, keeping the
// one it had.
func TestSwitch(t *testing.T) {
	s := &Switch{ErrorText: "服务异常"}
	if err := s.Set(Mode{Name: Error}); err != nil || s.Get().Text != "服务异常" {
		t.Fatalf("error mode: %+v %v", s.Get(), err)
	}
	if err := s.Set(Mode{Name: "sideways"}); err == nil || s.Get().Name != Error {
		t.Fatalf("unknown mode: %v, now %+v", err, s.Get())
	}
}
