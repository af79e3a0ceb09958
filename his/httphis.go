package his

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"ihos"
)

// HTTP is the HIS adapter for HIS vendors that offer JSON web services
// instead of HL7 (docs/his-interface.md, "The HTTP/JSON variant"). Results
// are polled (PollResults) rather than pushed.
type HTTP struct {
	BaseURL string
	Client  *http.Client // default: 30 s timeout
	Observe func(context.Context, Exchange)
}

func (h *HTTP) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// maxHTTPBody bounds an answer from the HIS.
const maxHTTPBody = 16 << 20

// do sends one request and decodes a 2xx JSON answer into out. A 4xx answer
// with {"code": "AE"|"AR"} is returned as ack (an application answer); a
// transport failure or 5xx is an EUnavailable error.
func (h *HTTP) do(ctx context.Context, method, path string, body, out any) (ack *ihos.HISAck, err error) {
	var reqBody []byte
	if body != nil {
		if reqBody, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	ex := Exchange{At: time.Now(), Direction: "out", Type: method + " " + strings.SplitN(path, "?", 2)[0], Request: string(reqBody)}
	if m, ok := body.(ihos.HISMessage); ok {
		ex.ControlID = m.ID
	}
	defer func() {
		ex.Elapsed = time.Since(ex.At)
		if err != nil {
			ex.Err = err.Error()
		}
		if h.Observe != nil {
			h.Observe(ctx, ex)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(h.BaseURL, "/")+path, bytes.NewReader(reqBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, errUnavailable(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody))
	if err != nil {
		return nil, errUnavailable(err)
	}
	ex.Response = string(raw)
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return nil, errUnavailable(fmt.Errorf("HIS answered %s", resp.Status))
	}
	if resp.StatusCode >= 400 {
		var a struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &a) != nil || a.Code == "" {
			a.Code, a.Message = ihos.AckRejected, resp.Status
		}
		ex.AckCode, ex.AckText = a.Code, a.Message
		return &ihos.HISAck{Code: a.Code, Text: a.Message}, nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, errUnavailable(fmt.Errorf("HIS answer is not the expected JSON: %w", err))
	}
	ex.AckCode = ihos.AckAccepted
	return nil, nil
}

func (h *HTTP) query(ctx context.Context, path string, out any) error {
	ack, err := h.do(ctx, http.MethodGet, path, nil, out)
	if err != nil {
		return err
	}
	if ack != nil {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "HIS 查询失败：" + or(ack.Text, ack.Code), Err: errors.New("HIS answered " + ack.Code)}
	}
	return nil
}

// FindPatients implements ihos.HIS.
func (h *HTTP) FindPatients(ctx context.Context, id ihos.PatientIdentifier) ([]ihos.HISPatient, error) {
	param := map[string]string{ihos.IDResident: "id_number", ihos.IDInsurance: "insurance_card", ihos.IDHISPatient: "his_id", ihos.IDVisitNo: "visit_no"}[id.Type]
	if param == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "不支持的患者标识类型：%s", id.Type)
	}
	var out struct {
		Patients []ihos.HISPatient `json:"patients"`
	}
	err := h.query(ctx, "/his/api/patients?"+url.Values{param: {id.Value}}.Encode(), &out)
	return out.Patients, err
}

// VisitHistory implements ihos.HIS.
func (h *HTTP) VisitHistory(ctx context.Context, hisPatientID string, since time.Time) ([]ihos.HISVisit, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.In(ihos.Shanghai).Format("2006-01-02"))
	}
	var out struct {
		Visits []ihos.HISVisit `json:"visits"`
	}
	err := h.query(ctx, "/his/api/patients/"+url.PathEscape(hisPatientID)+"/visits?"+q.Encode(), &out)
	return out.Visits, err
}

// UnpaidFees implements ihos.HIS.
func (h *HTTP) UnpaidFees(ctx context.Context, hisPatientID string) ([]ihos.HISFee, error) {
	var out struct {
		Fees []struct {
			ihos.HISFee
			Quantity json.Number `json:"quantity"`
		} `json:"fees"`
	}
	if err := h.query(ctx, "/his/api/patients/"+url.PathEscape(hisPatientID)+"/fees?status=unpaid", &out); err != nil {
		return nil, err
	}
	fees := make([]ihos.HISFee, len(out.Fees))
	for i, f := range out.Fees {
		fees[i] = f.HISFee
		fees[i].Quantity = f.Quantity.String()
	}
	return fees, nil
}

// Reports implements ihos.HIS.
func (h *HTTP) Reports(ctx context.Context, hisPatientID string, since time.Time) ([]ihos.HISReport, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.In(ihos.Shanghai).Format("2006-01-02"))
	}
	var out struct {
		Reports []ihos.HISReport `json:"reports"`
	}
	err := h.query(ctx, "/his/api/patients/"+url.PathEscape(hisPatientID)+"/reports?"+q.Encode(), &out)
	return out.Reports, err
}

// Catalog implements ihos.HIS.
func (h *HTTP) Catalog(ctx context.Context, kind string) ([]ihos.CatalogItem, error) {
	var out struct {
		Items []ihos.CatalogItem `json:"items"`
	}
	err := h.query(ctx, "/his/api/catalog/"+strings.ToLower(kind), &out)
	return out.Items, err
}

// Deliver implements ihos.HIS.
func (h *HTTP) Deliver(ctx context.Context, m ihos.HISMessage) (ihos.HISAck, error) {
	var out ihos.HISAck
	ack, err := h.do(ctx, http.MethodPost, "/his/api/messages", m, &out)
	if err != nil {
		return ihos.HISAck{}, err
	}
	if ack != nil {
		return *ack, nil
	}
	if out.Code == "" {
		out.Code = ihos.AckAccepted
	}
	return out, nil
}

// PollResults fetches results after the cursor seq; it returns them with the
// cursor to ask from next time.
func (h *HTTP) PollResults(ctx context.Context, after int64, limit int) ([]ihos.HISResult, int64, error) {
	var out struct {
		Results []struct {
			ihos.HISResult
			Seq int64 `json:"seq"`
		} `json:"results"`
	}
	if err := h.query(ctx, "/his/api/results?after="+strconv.FormatInt(after, 10)+"&limit="+strconv.Itoa(limit), &out); err != nil {
		return nil, after, err
	}
	rs := make([]ihos.HISResult, len(out.Results))
	for i, r := range out.Results {
		rs[i] = r.HISResult
		rs[i].ControlID = "http-result-" + strconv.FormatInt(r.Seq, 10)
		after = max(after, r.Seq)
	}
	return rs, after, nil
}

// RunResultPoll polls an HTTP HIS for results every interval and stores them
// until ctx ends. The cursor starts from zero at each start; results already
// stored are recognised by their control id and skipped.
func (s *Service) RunResultPoll(ctx context.Context, h *HTTP, every time.Duration) {
	var cursor int64
	for {
		rs, next, err := h.PollResults(ctx, cursor, 100)
		if err == nil {
			for _, r := range rs {
				if err := s.StoreResult(ctx, r); err != nil {
					s.logger().Warn("his: store polled result", "err", err, "order", r.PlacerOrderNo)
				}
			}
			cursor = next
		} else if ctx.Err() == nil {
			s.logger().Warn("his: poll results", "err", err)
		}
		if len(rs) == 100 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
