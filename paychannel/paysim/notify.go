package paysim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"ihos"
	"ihos/paychannel"
)

// NotifyAttempt is one notify POST as GET /control/notifies lists it.
type NotifyAttempt struct {
	At        time.Time `json:"at"`
	ID        string    `json:"id"`
	EventType string    `json:"event_type"`
	URL       string    `json:"url"`
	Attempt   int       `json:"attempt"`             // 1 for the first; duplicates count on
	Duplicate bool      `json:"duplicate,omitempty"` // a deliberate extra copy
	Status    int       `json:"status"`              // the merchant's HTTP status; 0 when it did not answer
	Err       string    `json:"err,omitempty"`
}

const maxAttempts = 2000

// notify sends one event to url: encrypted under the merchant's APIv3 key,
// signed anew on every attempt, retried on the schedule until the merchant
// answers 2xx, then sent again Mode.DuplicateNotify times. With sync the
// first attempt is made before notify returns (the early notify); the rest
// run in the background.
func (s *Sim) notify(m Merchant, url, event, summary, originalType string, payload any, sync bool) {
	mode := s.Mode()
	if mode.NoNotify {
		s.count("notify_suppressed")
		return
	}
	plain, err := json.Marshal(payload)
	if err != nil {
		s.log.Error("notify payload", "err", err)
		return
	}
	scheme := m.scheme()
	res, err := paychannel.EncryptResourceWith(paychannel.ResourceAlgorithm(scheme), m.APIv3Key, originalType, originalType, plain)
	if err != nil {
		s.log.Error("notify encrypt", "mchid", m.MchID, "err", err)
		return
	}
	nb := paychannel.NotifyBody{ID: ihos.NewID(), CreateTime: beijing(s.cfg.Now()), EventType: event,
		ResourceType: "encrypt-resource", Summary: summary, Resource: res}
	body, _ := json.Marshal(nb)
	first := 0
	if sync && mode.NotifyDelayMS == 0 {
		if s.deliver(scheme, url, nb, body, 1, false) {
			s.later(0, func() { s.duplicates(scheme, url, nb, body, mode.DuplicateNotify) })
			return
		}
		first = 1
	}
	s.later(time.Duration(mode.NotifyDelayMS)*time.Millisecond, func() {
		for i := first; i < len(s.cfg.NotifyRetry); i++ {
			if d := s.cfg.NotifyRetry[i]; d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-s.quit:
					t.Stop()
					return
				}
			}
			if s.deliver(scheme, url, nb, body, i+1, false) {
				s.duplicates(scheme, url, nb, body, mode.DuplicateNotify)
				return
			}
		}
		s.count("notify_gave_up")
		s.log.Warn("notify given up", "id", nb.ID, "event", event, "url", url)
	})
}

func (s *Sim) duplicates(scheme, url string, nb paychannel.NotifyBody, body []byte, n int) {
	for i := 0; i < n; i++ {
		select {
		case <-s.quit:
			return
		default:
		}
		s.deliver(scheme, url, nb, body, i+2, true)
	}
}

// deliver makes one attempt, signed with the platform key of scheme; true
// when the merchant answered 2xx.
func (s *Sim) deliver(scheme, url string, nb paychannel.NotifyBody, body []byte, attempt int, dup bool) bool {
	rec := NotifyAttempt{At: s.cfg.Now().UTC(), ID: nb.ID, EventType: nb.EventType, URL: url, Attempt: attempt, Duplicate: dup}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Mozilla/4.0 (ihos pay-sim notify)")
		s.signHeaders(req.Header, scheme, body)
		var resp *http.Response
		if resp, err = s.notifyHC.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			rec.Status = resp.StatusCode
		}
	}
	if err != nil {
		rec.Err = err.Error()
	}
	ok := rec.Status/100 == 2
	s.mu.Lock()
	s.attempts = append(s.attempts, rec)
	if len(s.attempts) > maxAttempts {
		s.attempts = append([]NotifyAttempt(nil), s.attempts[len(s.attempts)-maxAttempts/2:]...)
	}
	s.counts["notify_sent"]++
	if ok {
		s.counts["notify_acked"]++
	}
	s.mu.Unlock()
	s.log.Debug("notify", "id", nb.ID, "event", nb.EventType, "attempt", attempt, "duplicate", dup, "status", rec.Status, "err", rec.Err)
	return ok
}

// Notifies returns the notify attempts made, oldest first (at most the last
// 2000).
func (s *Sim) Notifies() []NotifyAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]NotifyAttempt(nil), s.attempts...)
}
