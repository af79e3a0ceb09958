package booking_test

import (
	"context"
	"strings"
	"testing"

	"ihos"
	"ihos/booking"
	"ihos/his"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// hisAnswers is the hospital's answer to the follow-up check: the patients
// with an offline diagnosis in a department (by name), or down.
type hisAnswers struct {
	diagnosed map[string]string // HIS patient id → department name
	down      bool
	asked     []his.FollowUpRequest
}

func (h *hisAnswers) FollowUp(ctx context.Context, hospital string, req his.FollowUpRequest) (his.Eligibility, error) {
	h.asked = append(h.asked, req)
	if h.down {
		return his.Eligibility{}, ihos.Errorf(ihos.EUnavailable, "医院系统暂时无法连接，请稍后再试")
	}
	if hospital != hosp || req.Days != booking.FollowUpDays {
		return his.Eligibility{}, ihos.Errorf(ihos.EInvalid, "bad request %s %+v", hospital, req)
	}
	if h.diagnosed[req.HISPatientID] == req.DepartmentName {
		return his.Eligibility{Eligible: true, Reason: "近 180 天内在本院线下确诊：原发性高血压（I10）"}, nil
	}
	return his.Eligibility{Reason: "近 180 天内没有在本院" + req.DepartmentName + "线下就诊并确诊的记录，互联网医院仅提供复诊服务，请先到院就诊"}, nil
}

func (f *fixture) link(patient, hisID string) {
	f.exec(`INSERT INTO patient_links (id, hospital_id, patient_id, his_patient_id, method, confidence, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'id_number', 100, 'linked', ?, ?)`, ihos.NewID(), hosp, patient, hisID, stamp(), stamp())
}

// The follow-up-only rule: in a department that requires it (the default),
// only a patient the HIS knows as diagnosed there books; each refusal is a
// 4xx (503 with the HIS unreachable) with a Chinese message. A pilot
// department without the rule does not ask the HIS.
func TestFollowUpOnlyRule(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := standard(t, db)
		h := &hisAnswers{diagnosed: map[string]string{"H-P1": "内科", "H-P2": "外科"}}
		f.svc.FollowUp = h
		f.link("p1", "H-P1")
		f.link("p2", "H-P2")
		text := f.schedule("doc1", "2026-12-03", "08:00", "10:00", "text", 15, 0)

		if _, err := f.svc.Book(ctx, booking.Request{SlotID: slot(text, 0), PatientID: "p1"}); err != nil {
			t.Fatalf("diagnosed in 内科: %v", err)
		}
		if len(h.asked) != 1 || h.asked[0].HISPatientID != "H-P1" || h.asked[0].DepartmentCode != "NK" || h.asked[0].DepartmentName != "内科" {
			t.Fatalf("asked %+v", h.asked)
		}
		_, err := f.svc.Book(ctx, booking.Request{SlotID: slot(text, 1), PatientID: "p2"})
		refused(t, err, ihos.EForbidden, "互联网医院仅提供复诊服务：近 180 天内没有在本院内科线下就诊并确诊的记录，互联网医院仅提供复诊服务，请先到院就诊")
		_, err = f.svc.Book(ctx, booking.Request{SlotID: slot(text, 1), PatientID: "p3"})
		refused(t, err, ihos.EConflict, "互联网医院仅提供复诊服务：请先关联医院就诊档案，以便核实您在本院内科的线下就诊记录")
		h.down = true
		_, err = f.svc.Book(ctx, booking.Request{SlotID: slot(text, 1), PatientID: "p1"})
		refused(t, err, ihos.EUnavailable, "医院系统暂时无法连接，无法核实您的线下就诊记录（互联网医院仅提供复诊服务），请稍后再预约")

		// A pilot department: the rule is off, the HIS is not asked.
		f.exec(`UPDATE departments SET online_follow_up_only = 0 WHERE id = 'd1'`)
		asked := len(h.asked)
		if _, err := f.svc.Book(ctx, booking.Request{SlotID: slot(text, 2), PatientID: "p3"}); err != nil {
			t.Fatalf("pilot department: %v", err)
		}
		if len(h.asked) != asked {
			t.Fatal("the HIS was asked for a pilot department")
		}
	})
}

// The condition and past history: kept on the booking and shown on Get;
// required when a patient account books; at most 2000 characters.
func TestBookingCondition(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := standard(t, db)
		text := f.schedule("doc1", "2026-12-03", "08:00", "10:00", "text", 15, 0)
		_, err := f.svc.Book(ctx, booking.Request{SlotID: slot(text, 0), PatientID: "p1", AccountID: "acc1"})
		if e, ok := err.(*ihos.Error); !ok || e.Code != ihos.EInvalid || e.Fields["condition"] != "请填写病情描述，便于医生了解您的情况" {
			t.Fatalf("no condition from a patient account: %v", err)
		}
		_, err = f.svc.Book(ctx, booking.Request{SlotID: slot(text, 0), PatientID: "p1", AccountID: "acc1", Condition: strings.Repeat("痛", 2001)})
		if e, ok := err.(*ihos.Error); !ok || e.Fields["condition"] != "病情描述不能超过 2000 字" {
			t.Fatalf("a long condition: %v", err)
		}
		b, err := f.svc.Book(ctx, booking.Request{SlotID: slot(text, 0), PatientID: "p1", AccountID: "acc1",
			Condition: "  血压控制不佳，近一周头晕  ", PastHistory: "高血压 5 年，服用氨氯地平"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.Get(ctx, b.ID)
		if err != nil || got.Condition != "血压控制不佳，近一周头晕" || got.PastHistory != "高血压 5 年，服用氨氯地平" || got.AccountID != "acc1" {
			t.Fatalf("get %+v %v", got, err)
		}
		if m := booking.FirstMessage(got); m != "病情描述：血压控制不佳，近一周头晕\n既往史：高血压 5 年，服用氨氯地平" {
			t.Fatalf("first message %q", m)
		}
		// Staff may book without one.
		if _, err := f.svc.Book(ctx, booking.Request{SlotID: slot(text, 1), PatientID: "p2"}); err != nil {
			t.Fatal(err)
		}
	})
}
