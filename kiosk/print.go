package kiosk

import (
	"strconv"
	"time"

	"ihos"
	"ihos/tickets"
)

// Print kinds the page asks for.
const (
	PrintRegistration = tickets.KindRegistration // ref: the visit number of one of today's visits
	PrintReport       = tickets.KindReport       // ref: the report number of one of the listed reports
)

// ticket builds the ticket of one of the session's visits or reports, and a
// title for the audit entry.
func (s *Service) ticket(k Kiosk, sess *session, kind, ref string) (Ticket, string, error) {
	s.mu.Lock()
	p, visits, reports := sess.patient, sess.visits, sess.reports
	s.mu.Unlock()
	switch kind {
	case PrintRegistration:
		for _, v := range visits {
			if v.VisitNo != ref || ref == "" {
				continue
			}
			if v.Status == ihos.VisitCancelled {
				return nil, "", ihos.Errorf(ihos.EConflict, "该号已退，不能打印挂号凭条")
			}
			return tickets.Registration{
				Hospital: s.Hospital, PatientName: p.Name, IDNumber: p.IDNumber, Phone: p.Phone,
				VisitNo: v.VisitNo, Department: v.DepartmentName, Doctor: v.DoctorName, VisitType: "门诊",
				VisitDate: v.VisitedAt, TimeSlot: v.TimeSlot, QueueNo: v.QueueNo, Fee: v.FeeFen,
				Operator: "自助机 " + k.Name,
			}, "挂号凭条 " + v.DepartmentName + " " + v.VisitNo, nil
		}
		return nil, "", ihos.Errorf(ihos.ENotFound, "未找到这条挂号记录，请返回重新查询")
	case PrintReport:
		for _, r := range reports {
			if r.ReportNo != ref || ref == "" {
				continue
			}
			if r.ResultStatus == "P" {
				return nil, "", ihos.Errorf(ihos.EConflict, "报告尚未审核，暂不能打印")
			}
			kindName := "检验"
			if r.Kind == ihos.CatalogExam {
				kindName = "检查"
			}
			t := tickets.Report{
				Hospital: s.Hospital, ReportNo: r.ReportNo, Kind: kindName, PatientName: p.Name,
				Sex: map[string]string{"M": "男", "F": "女"}[p.Sex], Age: age(p.BirthDate, r.ReportedAt),
				VisitNo: r.VisitNo, ServiceName: r.ServiceName, Department: r.DepartmentName,
				ReportedAt: r.ReportedAt, Conclusion: r.Conclusion, Doctor: r.DoctorName,
			}
			for _, ob := range r.Observations {
				t.Lines = append(t.Lines, tickets.ReportLine{Name: ob.Name, Value: ob.Value, Units: ob.Units, Range: ob.Range, Flag: ob.Flag})
			}
			return t, kindName + "报告 " + r.ServiceName + " " + r.ReportNo, nil
		}
		return nil, "", ihos.Errorf(ihos.ENotFound, "未找到这份报告，请返回重新查询")
	}
	return nil, "", ihos.Errorf(ihos.EInvalid, "不支持打印这种凭条")
}

// age is the age in whole years at t of someone born on birth (YYYY-MM-DD
// or YYYYMMDD), as a report shows it ("45岁"), or "" when unknown.
func age(birth string, at time.Time) string {
	if len(birth) == 10 {
		birth = birth[:4] + birth[5:7] + birth[8:]
	}
	b, err := time.ParseInLocation("20060102", birth, ihos.Shanghai)
	if err != nil || at.IsZero() {
		return ""
	}
	at = at.In(ihos.Shanghai)
	years := at.Year() - b.Year()
	if at.Month() < b.Month() || at.Month() == b.Month() && at.Day() < b.Day() {
		years--
	}
	if years < 0 {
		return ""
	}
	return strconv.Itoa(years) + "岁"
}
