package hissim

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"

	"ihos/his/hl7"
	"ihos/his/mllp"
)

// observation is one OBX of a result, and one entry of the JSON results.
type observation struct {
	Type  string `json:"type"` // NM, ST, TX
	Code  string `json:"code"`
	Name  string `json:"name"`
	Value string `json:"value"`
	Units string `json:"units"`
	Range string `json:"range"`
	Flag  string `json:"flag"`
}

// produceResults turns due lab and exam orders into results, until Close.
func (s *Sim) produceResults() {
	for {
		next, err := s.produceDue(s.ctx)
		if err != nil && s.ctx.Err() == nil {
			s.log.Error("produce results", "err", err)
			next = time.Now().Add(time.Second)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(0, time.Until(next))
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-s.wakeResults:
		case <-t.C:
		}
		t.Stop()
	}
}

type dueOrder struct {
	placer, filler, kind, hisID, visitNo, code, name, specimen string
	doctorCode, doctorName, deptCode                           string
	orderedAt                                                  time.Time
}

// produceDue makes the results of every order now due and returns when the
// next one falls due (zero: none waiting).
func (s *Sim) produceDue(ctx context.Context) (time.Time, error) {
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT placer_order_no, filler_order_no, kind, his_id, visit_no, code, name, specimen, doctor_code, doctor_name, department_code, ordered_at
			FROM orders WHERE result_due IS NOT NULL AND result_due <= ? AND status = 'IP' ORDER BY result_due, placer_order_no LIMIT 50`, time.Now().UnixMilli())
		if err != nil {
			return time.Time{}, err
		}
		var due []dueOrder
		for rows.Next() {
			var o dueOrder
			var at string
			if err := rows.Scan(&o.placer, &o.filler, &o.kind, &o.hisID, &o.visitNo, &o.code, &o.name, &o.specimen, &o.doctorCode, &o.doctorName, &o.deptCode, &at); err != nil {
				rows.Close()
				return time.Time{}, err
			}
			o.orderedAt = parseDB(at)
			due = append(due, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return time.Time{}, err
		}
		if len(due) == 0 {
			break
		}
		for _, o := range due {
			if err := s.produce(ctx, o); err != nil {
				return time.Time{}, fmt.Errorf("result of %s: %w", o.placer, err)
			}
		}
		wake(s.wakePush)
	}
	var next sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT min(result_due) FROM orders WHERE result_due IS NOT NULL AND status = 'IP'`).Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, err
	}
	return time.UnixMilli(next.Int64), nil
}

// produce makes, stores and queues the result of one order.
func (s *Sim) produce(ctx context.Context, o dueOrder) error {
	it, known, err := s.item(ctx, o.code)
	if err != nil {
		return err
	}
	if !known {
		it = catalogItem{Kind: o.kind, Code: o.code, Name: o.name, Report: "default"}
	}
	if o.name == "" {
		o.name = it.Name
	}
	reported := time.Now()
	var obs []observation
	if o.kind == "EXAM" {
		obs = examObservations(o.placer, o.name, it.Report)
	} else {
		obs = labObservations(o.placer, o.code, o.name, it.Panel)
	}
	pats, err := s.findPatients(ctx, "PI", o.hisID)
	if err != nil {
		return err
	}
	var p patientRow
	if len(pats) > 0 {
		p = pats[0]
	}
	controlID := hl7.NewControlID()
	msg := buildORU(controlID, p, o, obs, reported)
	raw, err := msg.Encode()
	if err != nil {
		return err
	}
	obsJSON, err := json.Marshal(obs)
	if err != nil {
		return err
	}
	state := "local"
	if s.cfg.ResultsTo != "" {
		state = "pending"
	}
	return s.group.Do(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE orders SET status = 'CM', result_due = NULL WHERE placer_order_no = ? AND status = 'IP'`, o.placer)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // cancelled meanwhile
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO results (placer_order_no, filler_order_no, his_id, control_id, service_code, service_name, order_status, result_status,
			reported_at, observations, message, push_state) VALUES (?, ?, ?, ?, ?, ?, 'CM', 'F', ?, ?, ?, ?)`,
			o.placer, o.filler, o.hisID, controlID, o.code, o.name, fmtDB(reported), string(obsJSON), raw, state)
		return err
	})
}

// buildORU writes the ORU^R01 of a result: MSH PID PV1 ORC OBR {OBX}.
func buildORU(controlID string, p patientRow, o dueOrder, obs []observation, reported time.Time) *hl7.Message {
	m := hl7.New("ORU", "R01", "ORU_R01", controlID)
	m.Set("MSH-3", "HIS")
	m.Set("MSH-4", "HIS")
	m.Set("MSH-5", hl7.Application)
	m.Set("MSH-6", hl7.Application)
	m.Set("MSH-7", hl7.Timestamp(reported))
	writePID(m.Add("PID"), 1, p)
	pv1 := m.Add("PV1")
	pv1.Set("1", "1")
	pv1.Set("2", "O")
	pv1.Set("3-1", o.deptCode)
	if d, ok := departments[o.deptCode]; ok {
		pv1.Set("3-9", d.name)
	}
	pv1.Set("7-1", o.doctorCode)
	pv1.Set("7-2", o.doctorName)
	pv1.Set("10", "ONLINE")
	pv1.Set("19", o.visitNo)
	orc := m.Add("ORC")
	orc.Set("1", "RE")
	orc.Set("2", o.placer)
	orc.Set("3", o.filler)
	orc.Set("5", "CM")
	orc.Set("9", hl7.Timestamp(reported))
	orc.Set("12-1", o.doctorCode)
	orc.Set("12-2", o.doctorName)
	orc.Set("17-1", o.deptCode)
	obr := m.Add("OBR")
	obr.Set("1", "1")
	obr.Set("2", o.placer)
	obr.Set("3", o.filler)
	obr.Set("4-1", o.code)
	obr.Set("4-2", o.name)
	collected := o.orderedAt.Add(reported.Sub(o.orderedAt) / 3)
	obr.Set("7", hl7.Timestamp(collected))
	if o.specimen != "" {
		obr.Set("15-1", o.specimen)
	}
	obr.Set("16-1", o.doctorCode)
	obr.Set("16-2", o.doctorName)
	obr.Set("22", hl7.Timestamp(reported))
	obr.Set("25", "F")
	for i, ob := range obs {
		obx := m.Add("OBX")
		obx.Set("1", strconv.Itoa(i+1))
		obx.Set("2", ob.Type)
		obx.Set("3-1", ob.Code)
		obx.Set("3-2", ob.Name)
		obx.Set("5", ob.Value)
		obx.Set("6-1", ob.Units)
		obx.Set("7", ob.Range)
		obx.Set("8", ob.Flag)
		obx.Set("11", "F")
		obx.Set("14", hl7.Timestamp(collected))
	}
	return m
}

// draw returns a number in [0, 1) fixed by the order and what is drawn for,
// so the same order always gets the same result.
func draw(placer, what string) float64 {
	h := fnv.New64a()
	h.Write([]byte(placer))
	h.Write([]byte{0})
	h.Write([]byte(what))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// labObservations makes plausible values for a lab panel: mostly within the
// reference range, some above, some below, with the flag the value earns.
func labObservations(placer, code, name string, panel []analyte) []observation {
	if len(panel) == 0 {
		// An item the catalogue does not know: one qualitative line.
		return []observation{{Type: "ST", Code: code, Name: name, Value: "阴性", Range: "阴性", Flag: "N"}}
	}
	var out []observation
	for _, a := range panel {
		u := draw(placer, a.Code)
		v := draw(placer, a.Code+"/value")
		switch {
		case len(a.Choices) > 0:
			out = append(out, observation{Type: "ST", Code: a.Code, Name: a.Name, Value: a.Choices[int(v*float64(len(a.Choices)))], Flag: "N"})
		case !a.numeric():
			ob := observation{Type: "ST", Code: a.Code, Name: a.Name, Value: a.Normal, Range: a.Normal, Flag: "N"}
			if u < 0.12 {
				ob.Value, ob.Flag = a.Abnormal, "H"
			}
			out = append(out, ob)
		default:
			low, high := atof(a.Low), atof(a.High)
			span := high - low
			dec := max(decimals(a.Low), decimals(a.High))
			var x float64
			switch {
			case u < 0.15: // above the range
				x = high + span*(0.05+0.6*v)
			case u < 0.27 && low > 0: // below it
				x = low - math.Min(low*0.5, span*(0.05+0.4*v))
			default:
				x = low + span*(0.1+0.8*v)
			}
			value := strconv.FormatFloat(x, 'f', dec, 64)
			y := atof(value)
			flag := "N"
			switch {
			case y > high:
				flag = "H"
			case y < low:
				flag = "L"
			}
			out = append(out, observation{Type: "NM", Code: a.Code, Name: a.Name, Value: value, Units: a.Unit, Range: a.refRange(), Flag: flag})
		}
	}
	return out
}

// examObservations writes an exam report: 检查所见 and 诊断意见, abnormal for
// about three orders in ten.
func examObservations(placer, name, report string) []observation {
	r, ok := examReports[report]
	if !ok {
		r = examReports["default"]
	}
	finding, impression := r.finding, r.impression
	if draw(placer, "abnormal") < 0.3 {
		finding, impression = r.abnFinding, r.abnImpression
	}
	fill := func(s string) string { return strings.ReplaceAll(s, "{name}", name) }
	return []observation{
		{Type: "TX", Code: "FINDING", Name: "检查所见", Value: fill(finding)},
		{Type: "TX", Code: "IMPRESSION", Name: "诊断意见", Value: fill(impression)},
	}
}

// pushResults sends pending results to ResultsTo, in order, retrying with
// backoff until the receiver acknowledges each; until Close.
func (s *Sim) pushResults() {
	if s.cfg.ResultsTo == "" {
		return
	}
	client := &mllp.Client{Addr: s.cfg.ResultsTo, DialTimeout: 5 * time.Second, ReplyTimeout: 30 * time.Second}
	defer client.Close()
	for s.ctx.Err() == nil {
		wait, err := s.pushNext(client)
		if err != nil && s.ctx.Err() == nil {
			s.log.Error("push results", "err", err)
			wait = time.Second
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-s.wakePush:
		case <-t.C:
		}
		t.Stop()
	}
}

// pushNext pushes the first pending result that is due and says how long to
// wait before the next attempt (0: go on at once).
func (s *Sim) pushNext(client *mllp.Client) (time.Duration, error) {
	ctx := s.ctx
	if s.currentMode().Name == ModeDown {
		return time.Hour, nil // a down HIS sends nothing; SetMode wakes us
	}
	now := time.Now().UnixMilli()
	var seq int64
	var attempts int
	var raw []byte
	var placer string
	err := s.db.QueryRowContext(ctx, `SELECT seq, attempts, message, placer_order_no FROM results WHERE push_state = 'pending' AND next_try <= ? ORDER BY seq LIMIT 1`, now).
		Scan(&seq, &attempts, &raw, &placer)
	if errors.Is(err, sql.ErrNoRows) {
		var next sql.NullInt64
		if err := s.db.QueryRowContext(ctx, `SELECT min(next_try) FROM results WHERE push_state = 'pending'`).Scan(&next); err != nil {
			return 0, err
		}
		if !next.Valid {
			return time.Hour, nil
		}
		return max(time.Millisecond, time.Duration(next.Int64-now)*time.Millisecond), nil
	}
	if err != nil {
		return 0, err
	}
	msg, err := hl7.Parse(raw)
	if err != nil {
		return 0, err
	}
	sctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	reply, err := client.Send(sctx, msg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		attempts++
		backoff := min(10*time.Second, 250*time.Millisecond<<min(attempts, 10))
		s.log.Warn("result push failed, will retry", "placer", placer, "attempt", attempts, "retry_in", backoff, "err", err)
		_, err = s.db.ExecContext(ctx, `UPDATE results SET attempts = ?, next_try = ?, last_error = ? WHERE seq = ?`,
			attempts, time.Now().Add(backoff).UnixMilli(), err.Error(), seq)
		return 0, err
	}
	code, text := reply.Get("MSA-1"), first(reply.Get("MSA-3"), reply.Get("ERR-8"))
	state := "sent"
	switch code {
	case "AA", "CA":
		s.log.Info("result delivered", "placer", placer, "control_id", msg.ControlID())
	default:
		// The receiver understood and refused (unknown order): a person looks
		// at it; resending the same message would be refused again.
		state = "rejected"
		s.log.Warn("result refused by the receiver", "placer", placer, "code", code, "text", text)
	}
	_, err = s.db.ExecContext(ctx, `UPDATE results SET push_state = ?, attempts = ?, last_error = ? WHERE seq = ?`,
		state, attempts+1, strings.TrimSpace(code+" "+text), seq)
	return 0, err
}

// resultJSON is one entry of GET /his/api/results.
type resultJSON struct {
	Seq           int64         `json:"seq"`
	ControlID     string        `json:"control_id"`
	PlacerOrderNo string        `json:"placer_order_no"`
	FillerOrderNo string        `json:"filler_order_no"`
	OrderStatus   string        `json:"order_status"`
	ResultStatus  string        `json:"result_status"`
	ServiceCode   string        `json:"service_code"`
	ServiceName   string        `json:"service_name"`
	ReportedAt    string        `json:"reported_at"`
	PatientHISID  string        `json:"patient_his_id"`
	Observations  []observation `json:"observations"`
}

func (s *Sim) results(ctx context.Context, after int64, limit int) ([]resultJSON, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, control_id, placer_order_no, filler_order_no, order_status, result_status, service_code, service_name, reported_at, his_id, observations
		FROM results WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []resultJSON{}
	for rows.Next() {
		var r resultJSON
		var at, obs string
		if err := rows.Scan(&r.Seq, &r.ControlID, &r.PlacerOrderNo, &r.FillerOrderNo, &r.OrderStatus, &r.ResultStatus, &r.ServiceCode, &r.ServiceName, &at, &r.PatientHISID, &obs); err != nil {
			return nil, err
		}
		r.ReportedAt = rfc3339(parseDB(at))
		if err := json.Unmarshal([]byte(obs), &r.Observations); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
