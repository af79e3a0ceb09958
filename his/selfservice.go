package his

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"ihos"
)

// What the self-service kiosk asks the HIS: who the patient is, today's
// registrations, unpaid fees and reports. These calls go straight to the HIS
// every time, with no cache on the appliance: the kiosk shows what the
// patient is to pay and where to go now, and a copy even a minute old can be
// wrong (a fee just paid at a counter, a registration just cancelled, a report
// just issued). The HIS is on the hospital's own network and answers in
// milliseconds; when it cannot be reached the kiosk says so (EUnavailable)
// rather than showing what it was.

// FindPatient identifies the patient at the kiosk by the ID card number, the
// medical insurance card number, the visit number on a registration slip, or
// the HIS patient id. A malformed ID card number is refused before the HIS is
// asked; when the HIS holds several records for the identifier the patient is
// sent to a counter, where a person can tell them apart.
func (s *Service) FindPatient(ctx context.Context, id ihos.PatientIdentifier) (ihos.HISPatient, error) {
	id.Value = strings.TrimSpace(id.Value)
	switch id.Type {
	case ihos.IDResident:
		id.Value = strings.ToUpper(id.Value)
		if !ihos.ValidIDNumber(id.Value) {
			return ihos.HISPatient{}, ihos.Errorf(ihos.EInvalid, "身份证号码有误，请核对后重新输入")
		}
	case ihos.IDInsurance:
		if id.Value == "" {
			return ihos.HISPatient{}, ihos.Errorf(ihos.EInvalid, "请输入医保卡号")
		}
	case ihos.IDVisitNo:
		if id.Value == "" {
			return ihos.HISPatient{}, ihos.Errorf(ihos.EInvalid, "请输入就诊号")
		}
	case ihos.IDHISPatient:
		if id.Value == "" {
			return ihos.HISPatient{}, ihos.Errorf(ihos.EInvalid, "请输入就诊卡号")
		}
	default:
		return ihos.HISPatient{}, ihos.Errorf(ihos.EInvalid, "不支持的患者标识类型：%s", ihos.Truncate(id.Type, 20))
	}
	if len(id.Value) > 64 {
		return ihos.HISPatient{}, ihos.Errorf(ihos.EInvalid, "输入的号码过长，请核对后重新输入")
	}
	found, err := s.HIS.FindPatients(ctx, id)
	if err != nil {
		return ihos.HISPatient{}, err
	}
	switch len(found) {
	case 0:
		return ihos.HISPatient{}, ihos.Errorf(ihos.ENotFound, "未找到您的就诊档案，请到人工窗口办理")
	case 1:
		return found[0], nil
	}
	return ihos.HISPatient{}, ihos.Errorf(ihos.EConflict, "您在本院有多份就诊档案，请到人工窗口办理")
}

// startOfToday is midnight in Beijing of the day t falls on.
func startOfToday(t time.Time) time.Time {
	d := t.In(ihos.Shanghai)
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, ihos.Shanghai)
}

// TodayVisits lists the patient's visits (registrations) of today, Beijing
// time, earliest first, cancelled ones included (Status says so).
func (s *Service) TodayVisits(ctx context.Context, hisPatientID string) ([]ihos.HISVisit, error) {
	if hisPatientID == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少 HIS 患者编号")
	}
	start := startOfToday(time.Now())
	visits, err := s.HIS.VisitHistory(ctx, hisPatientID, start)
	if err != nil {
		return nil, err
	}
	// The HIS filters by day; a HIS that ignores the filter must not make
	// yesterday's visits look like today's.
	visits = slices.DeleteFunc(visits, func(v ihos.HISVisit) bool { return v.VisitedAt.Before(start) })
	slices.SortStableFunc(visits, func(a, b ihos.HISVisit) int { return a.VisitedAt.Compare(b.VisitedAt) })
	return visits, nil
}

// UnpaidFees lists the patient's outstanding fees, online and offline.
func (s *Service) UnpaidFees(ctx context.Context, hisPatientID string) ([]ihos.HISFee, error) {
	if hisPatientID == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少 HIS 患者编号")
	}
	return s.HIS.UnpaidFees(ctx, hisPatientID)
}

// Reports lists the patient's lab and exam reports issued since the given
// time (zero: all; the HIS filters by day), newest first, whether ordered
// online through the platform or at the hospital's counters.
func (s *Service) Reports(ctx context.Context, hisPatientID string, since time.Time) ([]ihos.HISReport, error) {
	if hisPatientID == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少 HIS 患者编号")
	}
	reports, err := s.HIS.Reports(ctx, hisPatientID, since)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(reports, func(a, b ihos.HISReport) int {
		return cmp.Or(b.ReportedAt.Compare(a.ReportedAt), strings.Compare(b.ReportNo, a.ReportNo))
	})
	return reports, nil
}
