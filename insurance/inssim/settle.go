package inssim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/insurance"
	"ihos/internal/simulate"
)

// Policy is how the simulator splits an outpatient settlement for one
// insurance type: the pooled fund pays RatioPct % of the amount within the
// policy scope (inscp_scp_amt) once the yearly deductible is used up, up to
// a yearly limit. The figures are the simulator's own, round and plausible;
// real ones differ by city and year.
type Policy struct {
	Insutype        string
	RatioPct        int64
	DeductibleFen   int64 // per person and year (the simulator's lifetime)
	AnnualLimitFen  int64
	FundPayType     string // setldetail fund_pay_type
	FundPayTypeName string
}

var policies = map[string]Policy{
	insurance.InsutypeEmployee: {insurance.InsutypeEmployee, 70, 5000, 2000000, "310100", "职工基本医疗保险统筹基金"},
	insurance.InsutypeResident: {insurance.InsutypeResident, 55, 2000, 300000, "390100", "城乡居民基本医疗保险统筹基金"},
}

// PolicyFor returns the simulator's policy for an insurance type.
func PolicyFor(insutype string) (Policy, bool) {
	p, ok := policies[insutype]
	return p, ok
}

// Price-limit rule of the simulator's catalogue, see classify.
const limitPerUnitFen = 1000

// SettlementRecord is a settlement as GET /control/settlements lists it, for
// reconciliation tests and the demo.
type SettlementRecord struct {
	SetlID        string     `json:"setl_id"`
	MdtrtID       string     `json:"mdtrt_id"`
	PsnNo         string     `json:"psn_no"`
	Insutype      string     `json:"insutype"`
	ChrgBchno     string     `json:"chrg_bchno"`
	MsgID         string     `json:"msgid"` // the 2207's msgid (medins_setl_id)
	FixmedinsCode string     `json:"fixmedins_code"`
	ClrOptins     string     `json:"clr_optins"`
	ClrType       string     `json:"clr_type"`
	SetlTime      time.Time  `json:"setl_time"`
	MedfeeFen     int64      `json:"medfee_fen"`
	FundFen       int64      `json:"fund_fen"`
	AcctFen       int64      `json:"acct_fen"`
	CashFen       int64      `json:"cash_fen"`
	DedcFen       int64      `json:"dedc_fen"`
	Status        string     `json:"status"` // settled, cancelled (2208), reversed (2601)
	CancelSetlID  string     `json:"cancel_setl_id,omitempty"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
}

// Settlement statuses.
const (
	SetlSettled   = "settled"
	SetlCancelled = "cancelled"
	SetlReversed  = "reversed"
)

// answer is the first answer to a msgid.
type answer struct {
	infno  string
	output json.RawMessage
	errMsg string
	psnNo  string
	setlID string
}

type feeLine struct {
	insurance.FeeDetail
	res       insurance.FeeResult
	settledBy string // setl_id, empty while unsettled
}

type visit struct {
	mdtrtID, psnNo, insutype, iptOtpNo string
	medType                            string
	diagnoses                          []insurance.DiseInfo
	closed                             bool // 2202
	lines                              []*feeLine
}

// ledger is the simulator's business state; guarded by Sim.mu.
type ledger struct {
	answers     map[string]answer
	reversed    map[string]string // omsgid → oinfno of a 2601 that found nothing to undo
	visits      map[string]*visit
	iptOtp      map[string]string // fixmedins_code + ipt_otp_no → mdtrt_id
	settlements []*SettlementRecord
	bySetl      map[string]*SettlementRecord
	byPsn       map[string]Insured
	balance     map[string]int64 // psn_no → personal account
	dedcUsed    map[string]int64
	fundUsed    map[string]int64
	idSeq       int64
}

func newLedger(persons []Insured) ledger {
	l := ledger{answers: map[string]answer{}, reversed: map[string]string{}, visits: map[string]*visit{},
		iptOtp: map[string]string{}, bySetl: map[string]*SettlementRecord{}, byPsn: map[string]Insured{},
		balance: map[string]int64{}, dedcUsed: map[string]int64{}, fundUsed: map[string]int64{}}
	for _, p := range persons {
		l.byPsn[p.PsnNo] = p
		l.balance[p.PsnNo] = p.BalcFen
	}
	return l
}

// Settlements returns every settlement made, oldest first.
func (s *Sim) Settlements() []SettlementRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SettlementRecord, len(s.settlements))
	for i, r := range s.settlements {
		out[i] = *r
	}
	return out
}

// controlSettlements lists settlements: GET /control/settlements
// [?date=yyyy-MM-dd] (settlement day, Beijing time).
func (s *Sim) controlSettlements(w http.ResponseWriter, r *http.Request) {
	day := r.URL.Query().Get("date")
	if day != "" {
		if _, err := time.ParseInLocation("2006-01-02", day, ihos.Shanghai); err != nil {
			simulate.Message(w, http.StatusBadRequest, "date 应为 yyyy-MM-dd")
			return
		}
	}
	list := []SettlementRecord{}
	for _, rec := range s.Settlements() {
		if day == "" || rec.SetlTime.In(ihos.Shanghai).Format("2006-01-02") == day {
			list = append(list, rec)
		}
	}
	simulate.JSON(w, http.StatusOK, map[string]any{"settlements": list})
}

func fail(format string, args ...any) answer { return answer{errMsg: fmt.Sprintf(format, args...)} }

func ok(v any) answer {
	if v == nil {
		return answer{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return answer{errMsg: "模拟平台内部错误"}
	}
	return answer{output: b}
}

// decodeData reads {"data": {...}} into v.
func decodeData(input json.RawMessage, v any) string {
	var in struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(input, &in); err != nil || len(in.Data) == 0 || string(in.Data) == "null" {
		return "输入参数不正确：缺少 data 节点"
	}
	if err := json.Unmarshal(in.Data, v); err != nil {
		return "输入参数格式不正确：" + err.Error()
	}
	return ""
}

// missing names the first empty field of name/value pairs.
func missing(pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return pairs[i] + " 不能为空"
		}
	}
	return ""
}

// business runs a transaction other than 1101 with s.mu held. known is
// false for an infno the simulator does not implement (not remembered
// against the msgid).
func (s *Sim) business(req *insurance.Request, m Mode) (a answer, known bool) {
	switch req.Infno {
	case insurance.InfnoRegister:
		a = s.register(req)
	case insurance.InfnoRegisterCancel:
		a = s.registerCancel(req)
	case insurance.InfnoVisitInfo:
		a = s.visitInfo(req)
	case insurance.InfnoFeeUpload:
		a = s.feeUpload(req)
	case insurance.InfnoFeeCancel:
		a = s.feeCancel(req)
	case insurance.InfnoPreSettle, insurance.InfnoSettle:
		a = s.settle(req, m)
	case insurance.InfnoSettleCancel:
		a = s.settleCancel(req)
	case insurance.InfnoReversal:
		a = s.reversal(req)
	case insurance.InfnoStatementTotals:
		a = s.statementTotals(req)
	default:
		return fail("交易编号 %s 暂不支持（模拟平台实现 1101、2201–2208、2601、3201）", req.Infno), false
	}
	return a, true
}

// person checks psn_no and the envelope's insuplc_admdvs, which
// REFERENCE.md requires with every psn_no.
func (s *Sim) person(req *insurance.Request, psnNo string) (Insured, string) {
	p, found := s.byPsn[psnNo]
	if !found {
		return Insured{}, "人员编号 " + psnNo + " 不存在"
	}
	if req.InsuplcAdmdvs == "" {
		return Insured{}, "交易含人员编号时参保地医保区划 insuplc_admdvs 不能为空"
	}
	if req.InsuplcAdmdvs != p.InsuplcAdmdvs {
		return Insured{}, "参保地医保区划 insuplc_admdvs 与人员参保地不一致"
	}
	return p, ""
}

// openVisit finds an open visit of this person.
func (s *Sim) openVisit(mdtrtID, psnNo string) (*visit, string) {
	v, found := s.visits[mdtrtID]
	if !found {
		return nil, "就诊ID " + mdtrtID + " 不存在"
	}
	if v.psnNo != psnNo {
		return nil, "就诊ID 与人员编号不一致"
	}
	if v.closed {
		return nil, "该就诊已撤销挂号"
	}
	return v, ""
}

func (s *Sim) newID(prefix string) string {
	s.idSeq++
	return prefix + s.cfg.Now().In(ihos.Shanghai).Format("20060102150405") + fmt.Sprintf("%08d", s.idSeq)
}

// checkCert checks the certificate shown against the person.
func (s *Sim) checkCert(p Insured, certType, certNo string) string {
	switch certType {
	case insurance.CertECToken:
		t, found := s.tokens[certNo]
		if !found || t.IDNumber != p.IDNumber {
			return "电子凭证令牌无效或与人员不符"
		}
	case insurance.CertIDCard:
		if !strings.EqualFold(certNo, p.IDNumber) {
			return "就诊凭证编号与人员证件号码不一致"
		}
	case insurance.CertSSCard:
		if certNo != p.SSCardNo {
			return "社会保障卡卡号与人员不一致"
		}
	default:
		return "就诊凭证类型 mdtrt_cert_type 不正确"
	}
	return ""
}

// register answers 2201.
func (s *Sim) register(req *insurance.Request) answer {
	var in insurance.Registration
	if e := decodeData(req.Input, &in); e != "" {
		return fail("%s", e)
	}
	if e := missing("人员编号 psn_no", in.PsnNo, "险种类型 insutype", in.Insutype, "开始时间 begntime", in.Begntime,
		"就诊凭证类型 mdtrt_cert_type", in.MdtrtCertType, "就诊凭证编号 mdtrt_cert_no", in.MdtrtCertNo,
		"住院/门诊号 ipt_otp_no", in.IptOtpNo, "医师编码 atddr_no", in.AtddrNo, "医师姓名 dr_name", in.DrName,
		"科室编码 dept_code", in.DeptCode, "科室名称 dept_name", in.DeptName, "科别 caty", in.Caty); e != "" {
		return fail("%s", e)
	}
	p, e := s.person(req, in.PsnNo)
	if e != "" {
		return fail("%s", e)
	}
	if p.PsnInsuStas != insurance.InsuStasNormal {
		return fail("人员参保状态异常（暂停参保），不能办理医保挂号")
	}
	if in.Insutype != p.Insutype {
		return fail("险种类型 %s 与人员参保险种 %s 不一致", in.Insutype, p.Insutype)
	}
	if e := s.checkCert(p, in.MdtrtCertType, in.MdtrtCertNo); e != "" {
		return fail("%s", e)
	}
	if _, err := time.ParseInLocation(insurance.InfTimeFormat, in.Begntime, ihos.Shanghai); err != nil {
		return fail("开始时间 begntime 应为 yyyy-MM-dd HH:mm:ss")
	}
	key := req.FixmedinsCode + "/" + in.IptOtpNo
	if id, dup := s.iptOtp[key]; dup && !s.visits[id].closed {
		return fail("门诊号 %s 已办理医保挂号（就诊ID %s）", in.IptOtpNo, id)
	}
	id := s.newID(p.InsuplcAdmdvs)
	s.visits[id] = &visit{mdtrtID: id, psnNo: p.PsnNo, insutype: in.Insutype, iptOtpNo: in.IptOtpNo}
	s.iptOtp[key] = id
	a := ok(map[string]insurance.Registered{"data": {MdtrtID: id, PsnNo: p.PsnNo, IptOtpNo: in.IptOtpNo}})
	a.psnNo = p.PsnNo
	return a
}

// visitOf checks the person named in a request (and their area) and returns
// their open visit mdtrtID: the start of every call on an existing visit.
func (s *Sim) visitOf(req *insurance.Request, psnNo, mdtrtID string) (*visit, string) {
	if _, e := s.person(req, psnNo); e != "" {
		return nil, e
	}
	return s.openVisit(mdtrtID, psnNo)
}

// registerCancel answers 2202.
func (s *Sim) registerCancel(req *insurance.Request) answer {
	var in insurance.RegistrationCancel
	if e := decodeData(req.Input, &in); e != "" {
		return fail("%s", e)
	}
	if e := missing("人员编号 psn_no", in.PsnNo, "就诊ID mdtrt_id", in.MdtrtID, "住院/门诊号 ipt_otp_no", in.IptOtpNo); e != "" {
		return fail("%s", e)
	}
	v, e := s.visitOf(req, in.PsnNo, in.MdtrtID)
	if e != "" {
		return fail("%s", e)
	}
	if v.iptOtpNo != in.IptOtpNo {
		return fail("门诊号与就诊ID不一致")
	}
	for _, l := range v.lines {
		if l.settledBy != "" {
			return fail("该就诊存在未撤销的结算，不能撤销挂号")
		}
	}
	v.closed, v.lines = true, nil
	return ok(nil)
}

// visitInfo answers 2203.
func (s *Sim) visitInfo(req *insurance.Request) answer {
	var in insurance.VisitInfo
	if err := json.Unmarshal(req.Input, &in); err != nil {
		return fail("输入参数格式不正确：%v", err)
	}
	m := in.MdtrtInfo
	if e := missing("就诊ID mdtrt_id", m.MdtrtID, "人员编号 psn_no", m.PsnNo, "医疗类别 med_type", m.MedType, "开始时间 begntime", m.Begntime); e != "" {
		return fail("%s", e)
	}
	if _, e := s.person(req, m.PsnNo); e != "" {
		return fail("%s", e)
	}
	v, e := s.openVisit(m.MdtrtID, m.PsnNo)
	if e != "" {
		return fail("%s", e)
	}
	if len(in.DiseInfo) == 0 {
		return fail("诊断信息 diseinfo 不能为空")
	}
	for _, d := range in.DiseInfo {
		if e := missing("诊断类别 diag_type", d.DiagType, "诊断代码 diag_code", d.DiagCode, "诊断名称 diag_name", d.DiagName); e != "" {
			return fail("%s", e)
		}
	}
	v.medType, v.diagnoses = m.MedType, in.DiseInfo
	return ok(nil)
}

// classify is the simulator's catalogue: a code starting "ZF" is 丙类
// (wholly self-paid), "YB" 乙类 (10 % paid first by the patient), anything
// else 甲类; a code containing "XJ" has a price limit of 10.00 yuan a unit,
// above which the amount is over the limit. The codes and the 01/02/03
// class values are the simulator's; the appliance must not depend on them.
func classify(f insurance.FeeDetail, cnt float64) insurance.FeeResult {
	amt := int64(f.DetItemFeeSumamt)
	r := insurance.FeeResult{FeedetlSn: f.FeedetlSn, DetItemFeeSumamt: f.DetItemFeeSumamt, Cnt: f.Cnt, Pric: f.Pric,
		ChrgitmLv: "01", SelfpayProp: "0", PricUplmtAmt: "0", LmtUsedFlag: "0"}
	code := strings.ToUpper(f.MedListCodg)
	if strings.HasPrefix(code, "ZF") {
		r.ChrgitmLv, r.SelfpayProp = "03", "1"
		r.FulamtOwnpayAmt = insurance.Yuan(amt)
		return r
	}
	var over int64
	if strings.Contains(code, "XJ") {
		r.PricUplmtAmt = insurance.Number(ihos.FormatYuan(limitPerUnitFen))
		if limit := int64(math.Round(limitPerUnitFen * cnt)); amt > limit {
			over = amt - limit
		}
	}
	var pre int64
	if strings.HasPrefix(code, "YB") {
		r.ChrgitmLv, r.SelfpayProp = "02", "0.1"
		pre = ((amt-over)*10 + 50) / 100
	}
	r.OverlmtAmt, r.PreselfpayAmt = insurance.Yuan(over), insurance.Yuan(pre)
	r.InscpScpAmt = insurance.Yuan(amt - over - pre)
	return r
}

// feeUpload answers 2204.
func (s *Sim) feeUpload(req *insurance.Request) answer {
	var in struct {
		Feedetail []insurance.FeeDetail `json:"feedetail"`
	}
	if err := json.Unmarshal(req.Input, &in); err != nil {
		return fail("输入参数格式不正确：%v", err)
	}
	if len(in.Feedetail) == 0 {
		return fail("费用明细 feedetail 不能为空")
	}
	first := in.Feedetail[0]
	if _, e := s.person(req, first.PsnNo); e != "" {
		return fail("%s", e)
	}
	v, e := s.openVisit(first.MdtrtID, first.PsnNo)
	if e != "" {
		return fail("%s", e)
	}
	seen := map[string]bool{}
	for _, l := range v.lines {
		seen[l.FeedetlSn] = true
	}
	lines := make([]*feeLine, 0, len(in.Feedetail))
	results := make([]insurance.FeeResult, 0, len(in.Feedetail))
	for i, f := range in.Feedetail {
		n := i + 1
		if e := missing("费用明细流水号 feedetl_sn", f.FeedetlSn, "收费批次号 chrg_bchno", f.ChrgBchno,
			"医疗目录编码 med_list_codg", f.MedListCodg, "费用发生时间 fee_ocur_time", f.FeeOcurTime); e != "" {
			return fail("第 %d 条明细：%s", n, e)
		}
		if f.MdtrtID != v.mdtrtID || f.PsnNo != v.psnNo {
			return fail("第 %d 条明细：就诊ID或人员编号与其他明细不一致", n)
		}
		if seen[f.FeedetlSn] {
			return fail("第 %d 条明细：费用明细流水号 %s 重复", n, f.FeedetlSn)
		}
		seen[f.FeedetlSn] = true
		if _, err := time.ParseInLocation(insurance.InfTimeFormat, f.FeeOcurTime, ihos.Shanghai); err != nil {
			return fail("第 %d 条明细：费用发生时间应为 yyyy-MM-dd HH:mm:ss", n)
		}
		cnt, err1 := strconv.ParseFloat(string(f.Cnt), 64)
		pric, err2 := strconv.ParseFloat(string(f.Pric), 64)
		if err1 != nil || err2 != nil || cnt <= 0 || pric <= 0 || f.DetItemFeeSumamt <= 0 {
			return fail("第 %d 条明细：数量、单价和金额应大于 0", n)
		}
		if math.Abs(cnt*pric*100-float64(f.DetItemFeeSumamt)) > 1 {
			return fail("第 %d 条明细：明细项目费用总额 %s 与数量×单价不符", n, ihos.FormatYuan(int64(f.DetItemFeeSumamt)))
		}
		r := classify(f, cnt)
		lines = append(lines, &feeLine{FeeDetail: f, res: r})
		results = append(results, r)
	}
	v.lines = append(v.lines, lines...)
	a := ok(map[string]any{"result": results})
	a.psnNo = v.psnNo
	return a
}

// feeCancel answers 2205.
func (s *Sim) feeCancel(req *insurance.Request) answer {
	var in insurance.FeeCancel
	if e := decodeData(req.Input, &in); e != "" {
		return fail("%s", e)
	}
	if e := missing("就诊ID mdtrt_id", in.MdtrtID, "收费批次号 chrg_bchno", in.ChrgBchno, "人员编号 psn_no", in.PsnNo); e != "" {
		return fail("%s", e)
	}
	v, e := s.visitOf(req, in.PsnNo, in.MdtrtID)
	if e != "" {
		return fail("%s", e)
	}
	all := in.ChrgBchno == insurance.FeeCancelAllUnsettled
	kept := v.lines[:0:0]
	removed := 0
	for _, l := range v.lines {
		if all || l.ChrgBchno == in.ChrgBchno {
			if l.settledBy != "" {
				if all {
					kept = append(kept, l)
					continue
				}
				return fail("收费批次 %s 已结算，请先撤销结算", in.ChrgBchno)
			}
			removed++
			continue
		}
		kept = append(kept, l)
	}
	if removed == 0 {
		return fail("没有可撤销的未结算费用明细")
	}
	v.lines = kept
	return ok(nil)
}

// split is one computed settlement.
type split struct {
	total, fulamt, overlmt, preself, inscp int64
	dedc, fund, psnPart, acct, cash, balc  int64
	ratio, limitLeft                       int64
}

// settle answers 2206 (pre-settlement: computed, nothing kept) and 2207.
func (s *Sim) settle(req *insurance.Request, m Mode) answer {
	final := req.Infno == insurance.InfnoSettle
	var in insurance.SettleInput
	if e := decodeData(req.Input, &in); e != "" {
		return fail("%s", e)
	}
	if e := missing("人员编号 psn_no", in.PsnNo, "就诊凭证类型 mdtrt_cert_type", in.MdtrtCertType, "就诊凭证编号 mdtrt_cert_no", in.MdtrtCertNo,
		"医疗类别 med_type", in.MedType, "个人结算方式 psn_setlway", in.PsnSetlway, "就诊ID mdtrt_id", in.MdtrtID,
		"收费批次号 chrg_bchno", in.ChrgBchno, "险种类型 insutype", in.Insutype); e != "" {
		return fail("%s", e)
	}
	p, e := s.person(req, in.PsnNo)
	if e != "" {
		return fail("%s", e)
	}
	v, e := s.openVisit(in.MdtrtID, in.PsnNo)
	if e != "" {
		return fail("%s", e)
	}
	if in.Insutype != v.insutype {
		return fail("险种类型与挂号时不一致")
	}
	if in.AcctUsedFlag != insurance.AcctUsed && in.AcctUsedFlag != insurance.AcctNotUsed {
		return fail("个人账户使用标志 acct_used_flag 应为 0 或 1")
	}
	pol, found := policies[v.insutype]
	if !found {
		return fail("险种类型 %s 暂不支持门诊结算", v.insutype)
	}
	var lines []*feeLine
	var sp split
	for _, l := range v.lines {
		if l.ChrgBchno == in.ChrgBchno && l.settledBy == "" {
			lines = append(lines, l)
			sp.total += int64(l.DetItemFeeSumamt)
			sp.fulamt += int64(l.res.FulamtOwnpayAmt)
			sp.overlmt += int64(l.res.OverlmtAmt)
			sp.preself += int64(l.res.PreselfpayAmt)
			sp.inscp += int64(l.res.InscpScpAmt)
		}
	}
	if len(lines) == 0 {
		return fail("收费批次 %s 没有待结算的费用明细", in.ChrgBchno)
	}
	if int64(in.MedfeeSumamt) != sp.total {
		return fail("医疗费总额 %s 与上传的费用明细合计 %s 不符", ihos.FormatYuan(int64(in.MedfeeSumamt)), ihos.FormatYuan(sp.total))
	}
	sp.ratio = pol.RatioPct
	if final && m.Name == ModeSplitChange {
		if in.AcctUsedFlag == insurance.AcctUsed && s.balance[p.PsnNo] > 0 {
			s.balance[p.PsnNo] = 0 // spent elsewhere since the pre-settlement
		} else {
			sp.ratio -= 10
		}
	}
	sp.dedc = min(max(0, pol.DeductibleFen-s.dedcUsed[p.PsnNo]), sp.inscp)
	sp.limitLeft = max(0, pol.AnnualLimitFen-s.fundUsed[p.PsnNo])
	sp.fund = min(((sp.inscp-sp.dedc)*sp.ratio+50)/100, sp.limitLeft)
	sp.psnPart = sp.total - sp.fund
	if in.AcctUsedFlag == insurance.AcctUsed {
		sp.acct = min(s.balance[p.PsnNo], sp.psnPart)
	}
	sp.cash = sp.psnPart - sp.acct
	sp.balc = s.balance[p.PsnNo] - sp.acct

	now := s.cfg.Now()
	info := setlInfo(p, in, v, sp, now)
	info.MedinsSetlID = req.MsgID
	detail := []insurance.SetlDetail{{FundPayType: pol.FundPayType, FundPayTypeName: pol.FundPayTypeName,
		InscpScpAmt: insurance.Yuan(sp.inscp), CrtPaybLmtAmt: insurance.Yuan(sp.limitLeft), FundPayamt: insurance.Yuan(sp.fund)}}
	if !final {
		a := ok(insurance.Settlement{SetlInfo: info, SetlDetail: detail})
		a.psnNo = p.PsnNo
		return a
	}
	info.SetlID = s.newID("S")
	for _, l := range lines {
		l.settledBy = info.SetlID
	}
	s.balance[p.PsnNo] -= sp.acct
	s.dedcUsed[p.PsnNo] += sp.dedc
	s.fundUsed[p.PsnNo] += sp.fund
	rec := &SettlementRecord{SetlID: info.SetlID, MdtrtID: v.mdtrtID, PsnNo: p.PsnNo, Insutype: v.insutype, ChrgBchno: in.ChrgBchno,
		MsgID: req.MsgID, FixmedinsCode: req.FixmedinsCode, ClrOptins: info.ClrOptins, ClrType: info.ClrType, SetlTime: now.UTC(),
		MedfeeFen: sp.total, FundFen: sp.fund, AcctFen: sp.acct, CashFen: sp.cash, DedcFen: sp.dedc, Status: SetlSettled}
	s.settlements = append(s.settlements, rec)
	s.bySetl[rec.SetlID] = rec
	a := ok(insurance.Settlement{SetlInfo: info, SetlDetail: detail})
	a.psnNo, a.setlID = p.PsnNo, rec.SetlID
	return a
}

// clrTypeOutpatient and clrWayByItem are the simulator's clr_type and
// clr_way values (REFERENCE.md names the fields only).
const (
	clrTypeOutpatient = "11"
	clrWayByItem      = "1"
)

func setlInfo(p Insured, in insurance.SettleInput, v *visit, sp split, now time.Time) insurance.SetlInfo {
	person := p.person(now).BaseInfo
	return insurance.SetlInfo{
		MdtrtID: v.mdtrtID, PsnNo: p.PsnNo, PsnName: p.Name, PsnCertType: person.PsnCertType, Certno: p.IDNumber,
		Gend: p.Gend, Naty: person.Naty, Brdy: p.Brdy, Age: person.Age, Insutype: v.insutype, PsnType: p.PsnType,
		CvlservFlag: "0", SetlTime: now.In(ihos.Shanghai).Format(insurance.InfTimeFormat), MdtrtCertType: in.MdtrtCertType,
		MedType: in.MedType, MedfeeSumamt: insurance.Yuan(sp.total), FulamtOwnpayAmt: insurance.Yuan(sp.fulamt),
		OverlmtSelfpay: insurance.Yuan(sp.overlmt), PreselfpayAmt: insurance.Yuan(sp.preself), InscpScpAmt: insurance.Yuan(sp.inscp),
		ActPayDedc: insurance.Yuan(sp.dedc), HifpPay: insurance.Yuan(sp.fund),
		PoolPropSelfpay: insurance.Number(strconv.FormatFloat(float64(sp.ratio)/100, 'f', 4, 64)),
		FundPaySumamt:   insurance.Yuan(sp.fund), PsnPartAmt: insurance.Yuan(sp.psnPart), AcctPay: insurance.Yuan(sp.acct),
		PsnCashPay: insurance.Yuan(sp.cash), Balc: insurance.Yuan(sp.balc),
		ClrOptins: p.InsuplcAdmdvs, ClrWay: clrWayByItem, ClrType: clrTypeOutpatient,
	}
}

// undo reverses a settlement's effect on the person and the fee lines.
func (s *Sim) undo(rec *SettlementRecord, status string) {
	s.balance[rec.PsnNo] += rec.AcctFen
	s.fundUsed[rec.PsnNo] -= rec.FundFen
	s.dedcUsed[rec.PsnNo] -= rec.DedcFen
	if v, found := s.visits[rec.MdtrtID]; found {
		for _, l := range v.lines {
			if l.settledBy == rec.SetlID {
				l.settledBy = ""
			}
		}
	}
	now := s.cfg.Now().UTC()
	rec.Status, rec.EndedAt = status, &now
}

// settleCancel answers 2208. The output is the reversal: a new setl_id and
// the amounts negated (the simulator's choice; REFERENCE.md lists only the
// input of 2208).
func (s *Sim) settleCancel(req *insurance.Request) answer {
	var in insurance.SettleCancel
	if e := decodeData(req.Input, &in); e != "" {
		return fail("%s", e)
	}
	if e := missing("结算ID setl_id", in.SetlID, "就诊ID mdtrt_id", in.MdtrtID, "人员编号 psn_no", in.PsnNo); e != "" {
		return fail("%s", e)
	}
	if _, e := s.person(req, in.PsnNo); e != "" {
		return fail("%s", e)
	}
	rec, found := s.bySetl[in.SetlID]
	if !found || rec.MdtrtID != in.MdtrtID || rec.PsnNo != in.PsnNo {
		return fail("结算ID %s 不存在或与就诊ID、人员编号不一致", in.SetlID)
	}
	if rec.Status != SetlSettled {
		return fail("该结算已撤销，不能重复撤销")
	}
	s.undo(rec, SetlCancelled)
	rec.CancelSetlID = s.newID("S")
	now := s.cfg.Now()
	info := insurance.SetlInfo{MdtrtID: rec.MdtrtID, SetlID: rec.CancelSetlID, PsnNo: rec.PsnNo, Insutype: rec.Insutype,
		SetlTime: now.In(ihos.Shanghai).Format(insurance.InfTimeFormat), MedfeeSumamt: insurance.Yuan(-rec.MedfeeFen),
		HifpPay: insurance.Yuan(-rec.FundFen), FundPaySumamt: insurance.Yuan(-rec.FundFen), AcctPay: insurance.Yuan(-rec.AcctFen),
		PsnCashPay: insurance.Yuan(-rec.CashFen), PsnPartAmt: insurance.Yuan(-rec.AcctFen - rec.CashFen),
		ActPayDedc: insurance.Yuan(-rec.DedcFen), Balc: insurance.Yuan(s.balance[rec.PsnNo]), MedinsSetlID: req.MsgID,
		ClrOptins: rec.ClrOptins, ClrWay: clrWayByItem, ClrType: rec.ClrType}
	a := ok(insurance.Settlement{SetlInfo: info, SetlDetail: []insurance.SetlDetail{}})
	a.psnNo, a.setlID = rec.PsnNo, rec.CancelSetlID
	return a
}

// reversal answers 2601 冲正: undo the transaction sent as omsgid. A msgid
// the simulator never answered is marked so that it is refused if it
// arrives late; of the answered transactions only 2207 can be undone.
func (s *Sim) reversal(req *insurance.Request) answer {
	var in insurance.Reversal
	if e := decodeData(req.Input, &in); e != "" {
		return fail("%s", e)
	}
	if e := missing("人员编号 psn_no", in.PsnNo, "原发送方报文ID omsgid", in.OMsgID, "原交易编号 oinfno", in.OInfno); e != "" {
		return fail("%s", e)
	}
	if _, e := s.person(req, in.PsnNo); e != "" {
		return fail("%s", e)
	}
	orig, found := s.answers[in.OMsgID]
	if !found {
		s.reversed[in.OMsgID] = in.OInfno
		return ok(nil)
	}
	if orig.infno != in.OInfno {
		return fail("原交易编号 %s 与原报文的交易编号 %s 不一致", in.OInfno, orig.infno)
	}
	if orig.psnNo != "" && orig.psnNo != in.PsnNo {
		return fail("人员编号与原交易不一致")
	}
	if orig.errMsg != "" {
		return ok(nil) // the original was refused: nothing to undo
	}
	if in.OInfno != insurance.InfnoSettle {
		return fail("模拟平台仅支持冲正 2207 结算交易")
	}
	rec := s.bySetl[orig.setlID]
	if rec == nil {
		return fail("原结算记录不存在")
	}
	switch rec.Status {
	case SetlSettled:
		s.undo(rec, SetlReversed)
	case SetlReversed:
	default:
		return fail("原结算已撤销（2208），不能冲正")
	}
	s.reversed[in.OMsgID] = in.OInfno // a repeat of the original is refused from now on
	return ok(nil)
}

// statementTotals answers 3201 对总账: the hospital's totals of settled
// (not cancelled or reversed) settlements of one insurance type in a date
// range (Beijing dates) against the simulator's. stmt_rslt "0" agrees, "1"
// does not (the simulator's codes).
func (s *Sim) statementTotals(req *insurance.Request) answer {
	var in insurance.StatementTotals
	if e := decodeData(req.Input, &in); e != "" {
		return fail("%s", e)
	}
	if e := missing("险种 insutype", in.Insutype, "对账开始日期 stmt_begndate", in.StmtBegndate, "对账结束日期 stmt_enddate", in.StmtEnddate); e != "" {
		return fail("%s", e)
	}
	begin, err1 := time.ParseInLocation("2006-01-02", in.StmtBegndate, ihos.Shanghai)
	end, err2 := time.ParseInLocation("2006-01-02", in.StmtEnddate, ihos.Shanghai)
	if err1 != nil || err2 != nil || end.Before(begin) {
		return fail("对账日期应为 yyyy-MM-dd，且结束日期不早于开始日期")
	}
	end = end.AddDate(0, 0, 1)
	var medfee, fund, acct int64
	cnt := 0
	for _, r := range s.settlements {
		if r.Status != SetlSettled || r.Insutype != in.Insutype || r.FixmedinsCode != req.FixmedinsCode ||
			r.SetlTime.Before(begin) || !r.SetlTime.Before(end) ||
			in.ClrType != "" && r.ClrType != in.ClrType || in.SetlOptins != "" && r.ClrOptins != in.SetlOptins {
			continue
		}
		medfee, fund, acct, cnt = medfee+r.MedfeeFen, fund+r.FundFen, acct+r.AcctFen, cnt+1
	}
	res := insurance.StatementResult{SetlOptins: in.SetlOptins, StmtRslt: insurance.StatementBalanced, StmtRsltDscr: "对账一致"}
	if medfee != int64(in.MedfeeSumamt) || fund != int64(in.FundPaySumamt) || acct != int64(in.AcctPay) || cnt != in.FixmedinsSetlCnt {
		res.StmtRslt = "1"
		res.StmtRsltDscr = fmt.Sprintf("对账不一致：平台医疗费总额 %s、基金支付 %s、个人账户 %s、结算 %d 笔",
			ihos.FormatYuan(medfee), ihos.FormatYuan(fund), ihos.FormatYuan(acct), cnt)
	}
	return ok(map[string]any{"stmtinfo": res})
}
