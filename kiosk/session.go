package kiosk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"ihos"
)

// Identification methods.
const (
	ByIDNumber = "id_number" // 居民身份证号, typed on the keypad or read from the card
	ByVisitNo  = "visit_no"  // 就诊号 from a registration slip
	ByVoucher  = "voucher"   // 医保电子凭证 QR code, read by the scanner
)

// What the kiosk tells a patient.
const (
	msgBadID       = "身份证号码有误，请核对后重新输入"
	msgUnknown     = "未找到您的就诊档案，请到人工窗口办理"
	msgHISDown     = "医院系统暂时无法连接，请稍后再试或到人工窗口办理"
	msgNoVoucher   = "医保电子凭证暂不可用，请使用身份证号或就诊号"
	msgBadVoucher  = "未能识别医保电子凭证，请在医保 App 中刷新二维码后重新扫描"
	msgExpired     = "操作超时，已返回首页，请重新识别身份"
	msgNoPrinter   = "本机暂未连接打印机，请到人工窗口打印"
	msgPayHint     = "请到收费窗口或使用手机缴费"
	msgPayHere     = "请勾选要缴纳的费用，再选择支付方式"
	reportDays     = 30
	reprintListMax = 20
)

// session is one patient at one kiosk. A kiosk serves one patient at a time:
// identifying starts a new session and ends the previous one.
type session struct {
	id      string
	kiosk   string
	patient ihos.HISPatient
	expires time.Time
	ttl     time.Duration

	visits  []ihos.HISVisit
	fees    []ihos.HISFee
	reports []ihos.HISReport
	// jobs are the print jobs the patient may follow and reprint: those
	// printed in this session and their earlier tickets.
	jobs map[string]bool

	// quote is the priced fee selection waiting for 确认支付 and pay the
	// payment started from it; payMu lets one payment start at a time.
	quote *payQuote
	pay   *payment
	payMu sync.Mutex
	// paid are the fee ids paid in this session: the HIS lists them as
	// unpaid until the payment is posted to it, which takes a moment.
	paid map[string]bool
}

// hisError turns an HIS failure into what the patient reads.
func hisError(err error) error {
	if ihos.ErrorCode(err) == ihos.ENotFound {
		return ihos.Errorf(ihos.ENotFound, msgUnknown)
	}
	return &ihos.Error{Code: ihos.EUnavailable, Message: msgHISDown, Err: err}
}

// Identify finds the patient by one identifier and starts the kiosk's
// patient session. The error messages are the ones the kiosk shows.
func (s *Service) Identify(ctx context.Context, k Kiosk, method, value string) (*session, error) {
	value = strings.TrimSpace(value)
	var id ihos.PatientIdentifier
	switch method {
	case ByIDNumber:
		value = strings.ToUpper(value)
		if !ihos.ValidIDNumber(value) {
			return nil, ihos.Errorf(ihos.EInvalid, msgBadID)
		}
		id = ihos.PatientIdentifier{Type: ihos.IDResident, Value: value}
	case ByVisitNo:
		if value == "" || len(value) > 32 || strings.ContainsFunc(value, func(r rune) bool {
			return !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '-')
		}) {
			return nil, ihos.Errorf(ihos.EInvalid, "就诊号有误，请核对挂号单上的就诊号")
		}
		id = ihos.PatientIdentifier{Type: ihos.IDVisitNo, Value: value}
	case ByVoucher:
		if s.Vouchers == nil {
			return nil, ihos.Errorf(ihos.EUnavailable, msgNoVoucher)
		}
		if value == "" || len(value) > 512 {
			return nil, ihos.Errorf(ihos.EInvalid, msgBadVoucher)
		}
		idNumber, _, err := s.Vouchers.Resolve(ctx, value)
		if err != nil {
			if c := ihos.ErrorCode(err); c == ihos.EInvalid || c == ihos.ENotFound {
				return nil, &ihos.Error{Code: ihos.EInvalid, Message: msgBadVoucher, Err: err}
			}
			return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "医保系统暂时无法连接，请使用身份证号或就诊号", Err: err}
		}
		id = ihos.PatientIdentifier{Type: ihos.IDResident, Value: strings.ToUpper(idNumber)}
	default:
		return nil, ihos.Errorf(ihos.EInvalid, "请选择识别方式")
	}
	found, err := s.HIS.FindPatients(ctx, id)
	if err != nil {
		return nil, hisError(err)
	}
	if len(found) == 0 {
		return nil, ihos.Errorf(ihos.ENotFound, msgUnknown)
	}
	var b [16]byte
	rand.Read(b[:])
	ttl := 2 * time.Duration(k.IdleSeconds) * time.Second
	sess := &session{id: hex.EncodeToString(b[:]), kiosk: k.ID, patient: found[0], ttl: ttl, expires: s.now().Add(ttl), jobs: map[string]bool{}}
	s.mu.Lock()
	if s.sessions == nil {
		s.sessions = map[string]*session{}
	}
	s.abandon(s.sessions[k.ID])
	s.sessions[k.ID] = sess
	s.mu.Unlock()
	return sess, nil
}

// session returns the kiosk's live session with id and extends it.
func (s *Service) session(k Kiosk, id string) (*session, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[k.ID]
	if sess == nil || id == "" || sess.id != id || now.After(sess.expires) {
		if sess != nil && now.After(sess.expires) {
			s.abandon(sess)
			delete(s.sessions, k.ID)
		}
		return nil, ihos.Errorf(ihos.EUnauthorized, msgExpired)
	}
	sess.expires = now.Add(sess.ttl)
	return sess, nil
}

// endSession ends the kiosk's session if it is id.
func (s *Service) endSession(k Kiosk, id string) {
	s.mu.Lock()
	if sess := s.sessions[k.ID]; sess != nil && sess.id == id {
		s.abandon(sess)
		delete(s.sessions, k.ID)
	}
	s.mu.Unlock()
}

// load reads today's visits, the unpaid fees and the last 30 days' reports
// from the HIS into the session.
func (s *Service) load(ctx context.Context, sess *session) error {
	now := s.now().In(ihos.Shanghai)
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, ihos.Shanghai)
	pid := sess.patient.HISID
	visits, err := s.HIS.VisitHistory(ctx, pid, today)
	if err != nil {
		return hisError(err)
	}
	fees, err := s.HIS.UnpaidFees(ctx, pid)
	if err != nil {
		return hisError(err)
	}
	reports, err := s.HIS.Reports(ctx, pid, now.AddDate(0, 0, -reportDays))
	if err != nil {
		return hisError(err)
	}
	var todays []ihos.HISVisit
	for _, v := range visits {
		if !v.VisitedAt.Before(today) {
			todays = append(todays, v)
		}
	}
	sort.SliceStable(todays, func(i, j int) bool { return todays[i].VisitedAt.Before(todays[j].VisitedAt) })
	sort.SliceStable(reports, func(i, j int) bool { return reports[i].ReportedAt.After(reports[j].ReportedAt) })
	s.mu.Lock()
	sess.visits, sess.fees, sess.reports = todays, fees, reports
	s.mu.Unlock()
	return nil
}

// maskName shows the surname and the last character: 张*三, 欧**明; a
// two-character name shows as 张*.
func maskName(name string) string {
	n := utf8.RuneCountInString(name)
	r := []rune(name)
	switch {
	case n == 0:
		return ""
	case n == 1:
		return name
	case n == 2:
		return string(r[0]) + "*"
	}
	return string(r[0]) + strings.Repeat("*", n-2) + string(r[n-1])
}
