package insurance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/his/hissim"
	"ihos/insurance"
	"ihos/insurance/inssim"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

const zhangsan = "110101199003078515" // 职工医保 310, account 1256.80

// demoFees is one charging batch of four lines, one of each catalogue rule
// of the simulator: 甲类, 乙类 (10 % paid first), 丙类 (self-paid) and a
// price-limited item (10.00 a unit).
//
//	total 152.80 = in scope 120.70 + self-paid 18.80 + over limit 6.00 + paid first 7.30
func demoFees() []insurance.FeeDetail {
	at := time.Now().In(ihos.Shanghai).Format(insurance.InfTimeFormat)
	line := func(sn, code string, cnt, pric string, fen int64) insurance.FeeDetail {
		return insurance.FeeDetail{FeedetlSn: sn, FeeOcurTime: at, MedListCodg: code, MedinsListCodg: "H-" + code,
			DetItemFeeSumamt: insurance.Yuan(fen), Cnt: insurance.Number(cnt), Pric: insurance.Number(pric),
			BilgDeptCodg: "A03", BilgDeptName: "内科", BilgDrCodg: "D0001", BilgDrName: "李医生", HospApprFlag: "1"}
	}
	return []insurance.FeeDetail{
		line("F1", "001102000010000", "1", "25", 2500),
		line("F2", "YB-XA01", "2", "36.5", 7300),
		line("F3", "ZF-VC100", "1", "18.8", 1880),
		line("F4", "XJ-T01", "3", "12", 3600),
	}
}

// identify runs 1101 by ID card and starts a settlement.
func identify(t testing.TB, c *insurance.Client, id string, useAccount bool) *insurance.OutpatientSettlement {
	t.Helper()
	p, err := c.PersonInfo(context.Background(), insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: id})
	if err != nil {
		t.Fatal(err)
	}
	st, err := insurance.NewOutpatientSettlement(p, insurance.CertIDCard, id, useAccount)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var visitSeq int

// throughPreSettle registers, uploads the diagnosis and demoFees, and
// pre-settles; the state goes through JSON between every step, as the
// payment service persists it.
func throughPreSettle(t testing.TB, c *insurance.Client, st *insurance.OutpatientSettlement) *insurance.OutpatientSettlement {
	t.Helper()
	ctx := context.Background()
	visitSeq++
	steps := []func() error{
		func() error {
			return st.Register(ctx, c, insurance.OutpatientVisit{IptOtpNo: fmt.Sprintf("MZ%d-%d", time.Now().UnixNano(), visitSeq),
				AtddrNo: "D0001", DrName: "李医生", DeptCode: "A03", DeptName: "内科", Caty: "A03"})
		},
		func() error {
			return st.UploadVisit(ctx, c, insurance.VisitInfo{
				MdtrtInfo: insurance.MdtrtInfo{MainCondDscr: "咳嗽三天"},
				DiseInfo: []insurance.DiseInfo{{DiagType: insurance.DiagTypeWestern, DiagSrtNo: 1, DiagCode: "J06.900", DiagName: "急性上呼吸道感染",
					DiagDept: "内科", DiseDorNo: "D0001", DiseDorName: "李医生", DiagTime: time.Now().In(ihos.Shanghai).Format(insurance.InfTimeFormat), ValiFlag: insurance.ValiFlagValid}},
			})
		},
		func() error { return st.UploadFees(ctx, c, "B0001", demoFees()) },
		func() error { return st.PreSettle(ctx, c) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		st = roundTrip(t, st)
	}
	return st
}

func roundTrip(t testing.TB, st *insurance.OutpatientSettlement) *insurance.OutpatientSettlement {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out insurance.OutpatientSettlement
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func balance(t *testing.T, sim *inssim.Sim, id string) int64 {
	t.Helper()
	p, _ := sim.Person(id)
	return p.BalcFen
}

func TestOutpatientFlowWithECToken(t *testing.T) {
	sim, c, _ := start(t)
	ctx := context.Background()
	// The kiosk (展码): the patient shows the e-voucher QR.
	tok := issueToken(t, sim, zhangsan)
	token, err := insurance.ParseVoucherQR(tok.QR)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.PersonInfo(ctx, insurance.PersonQuery{MdtrtCertType: insurance.CertECToken, MdtrtCertNo: token})
	if err != nil {
		t.Fatal(err)
	}
	st, err := insurance.NewOutpatientSettlement(p, insurance.CertECToken, token, true)
	if err != nil {
		t.Fatal(err)
	}
	st = throughPreSettle(t, c, st)

	// The platform's split of each line.
	want := map[string][5]insurance.Yuan{ // fulamt, overlmt, preself, inscp; [4] unused
		"F1": {0, 0, 0, 2500}, "F2": {0, 0, 730, 6570}, "F3": {1880, 0, 0, 0}, "F4": {0, 600, 0, 3000},
	}
	for _, f := range st.Fees {
		w := want[f.FeedetlSn]
		if f.FulamtOwnpayAmt != w[0] || f.OverlmtAmt != w[1] || f.PreselfpayAmt != w[2] || f.InscpScpAmt != w[3] || f.ChrgitmLv == "" {
			t.Errorf("fee %s = %+v", f.FeedetlSn, f)
		}
	}
	if st.MedfeeSumamt != 15280 || st.InscpScpAmt != 12070 || st.FulamtOwnpayAmt != 1880 || st.OverlmtSelfpay != 600 || st.PreselfpayAmt != 730 {
		t.Fatalf("sums = %+v", st)
	}
	// 310: 70 % of (120.70 − deductible 50.00) = 49.49 from the fund; the
	// rest, 103.31, from the account (1256.80).
	pre := st.PreSetl
	if st.State != insurance.StatePreSettled || pre.FundPaySumamt != 4949 || pre.ActPayDedc != 5000 || pre.AcctPay != 10331 ||
		pre.PsnCashPay != 0 || pre.PsnPartAmt != 10331 || pre.Balc != 125680-10331 || pre.SetlID != "" {
		t.Fatalf("pre-settlement = %+v", pre)
	}
	if balance(t, sim, zhangsan) != 125680 {
		t.Fatal("the pre-settlement touched the account")
	}

	if _, err := st.PrepareSettle(c); err != nil {
		t.Fatal(err)
	}
	st = roundTrip(t, st) // persisted with the 2207 msgid before sending
	msgid := st.SetlMsgID
	if err := st.Settle(ctx, c); err != nil {
		t.Fatal(err)
	}
	if st.State != insurance.StateSettled || st.Setl.SetlID == "" || st.SplitChanged || st.Setl.MedinsSetlID != msgid ||
		st.Setl.AcctPay != 10331 || st.Setl.FundPaySumamt != 4949 || len(st.SetlDetail) != 1 || st.SetlDetail[0].FundPayamt != 4949 {
		t.Fatalf("settlement = %+v", st)
	}
	if err := insurance.CheckSplit(*st.Setl, false); err != nil {
		t.Fatal(err)
	}
	if balance(t, sim, zhangsan) != 125680-10331 {
		t.Fatalf("balance = %d", balance(t, sim, zhangsan))
	}

	// On the wire: the codes in order, each under its own msgid, with the
	// insured's area from 1101 on every call that names the person.
	var infnos []string
	seen := map[string]bool{}
	for _, r := range sim.Requests() {
		infnos = append(infnos, r.Infno)
		if seen[r.MsgID] {
			t.Errorf("msgid %s sent twice", r.MsgID)
		}
		seen[r.MsgID] = true
		var env insurance.Request
		json.Unmarshal(r.Body, &env)
		if r.Infno != "1101" && (env.InsuplcAdmdvs != "110100" || env.OpterType != insurance.OpterKiosk) {
			t.Errorf("%s: insuplc_admdvs %q opter_type %q", r.Infno, env.InsuplcAdmdvs, env.OpterType)
		}
		if r.Infcode != 0 {
			t.Errorf("%s refused: %s", r.Infno, r.ErrMsg)
		}
	}
	if got := strings.Join(infnos, " "); got != "1101 2201 2203 2204 2206 2207" {
		t.Fatalf("transactions = %s", got)
	}
	for _, call := range st.Calls {
		if call.Outcome != insurance.OutcomeOK || call.Attempts != 1 || len(call.MsgID) != 30 {
			t.Errorf("call %+v", call)
		}
	}
	recs := sim.Settlements()
	if len(recs) != 1 || recs[0].SetlID != st.Setl.SetlID || recs[0].MsgID != msgid || recs[0].Status != inssim.SetlSettled {
		t.Fatalf("simulator settlements = %+v", recs)
	}
}

func TestResidentWithoutAccount(t *testing.T) {
	_, c, _ := start(t)
	st := throughPreSettle(t, c, identify(t, c, hissim.DemoPatients[2].IDNumber, true)) // 王五, 390, no account
	// 390: 55 % of (120.70 − 20.00) = 55.385 → 55.39; the rest in cash.
	if p := st.PreSetl; p.FundPaySumamt != 5539 || p.AcctPay != 0 || p.PsnCashPay != 15280-5539 || p.PoolPropSelfpay != "0.5500" {
		t.Fatalf("pre-settlement = %+v", p)
	}
	if err := st.Settle(context.Background(), c); err != nil || st.Setl.PsnCashPay != 9741 {
		t.Fatalf("settle: %v %+v", err, st.Setl)
	}
}

func TestCancelSettlementAndVisit(t *testing.T) {
	sim, c, _ := start(t)
	ctx := context.Background()
	st := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	if err := st.CancelRegistration(ctx, c); ihos.ErrorCode(err) != ihos.EConflict {
		t.Fatalf("2202 before settling: %v", err)
	}
	if err := st.Settle(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Not before the settlement is cancelled: refused here, and by the platform.
	if err := st.CancelFees(ctx, c); ihos.ErrorCode(err) != ihos.EConflict {
		t.Fatalf("2205 of a settled batch: %v", err)
	}
	err := c.CancelFees(ctx, insurance.CallOptions{InsuplcAdmdvs: st.InsuplcAdmdvs}, insurance.FeeCancel{MdtrtID: st.MdtrtID, ChrgBchno: st.ChrgBchno, PsnNo: st.PsnNo})
	wantCode(t, err, ihos.EInvalid, "已结算")

	if err := st.Cancel(ctx, c); err != nil {
		t.Fatal(err)
	}
	if st.State != insurance.StateCancelled || st.CancelSetlID == "" || st.CancelSetlID == st.Setl.SetlID {
		t.Fatalf("after 2208: %+v", st)
	}
	if balance(t, sim, zhangsan) != 125680 {
		t.Fatal("account not restored by 2208")
	}
	if recs := sim.Settlements(); recs[0].Status != inssim.SetlCancelled || recs[0].CancelSetlID != st.CancelSetlID {
		t.Fatalf("records = %+v", recs)
	}
	// A second 2208 of the same settlement is refused by the platform.
	_, err = c.CancelSettle(ctx, insurance.CallOptions{InsuplcAdmdvs: st.InsuplcAdmdvs}, insurance.SettleCancel{SetlID: st.Setl.SetlID, MdtrtID: st.MdtrtID, PsnNo: st.PsnNo})
	wantCode(t, err, ihos.EInvalid, "已撤销")

	if err := st.CancelFees(ctx, c); err != nil || st.State != insurance.StateRegistered {
		t.Fatalf("2205: %v, %s", err, st.State)
	}
	if err := st.CancelRegistration(ctx, c); err != nil || st.State != insurance.StateClosed {
		t.Fatalf("2202: %v, %s", err, st.State)
	}
}

func TestIdempotentMsgID(t *testing.T) {
	sim, c, _ := start(t)
	ctx := context.Background()
	st := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	in := insurance.SettleInput{PsnNo: st.PsnNo, MdtrtCertType: st.MdtrtCertType, MdtrtCertNo: st.MdtrtCertNo, MedType: st.MedType,
		MedfeeSumamt: st.MedfeeSumamt, PsnSetlway: insurance.PsnSetlwayByItem, MdtrtID: st.MdtrtID, ChrgBchno: st.ChrgBchno,
		Insutype: st.Insutype, AcctUsedFlag: insurance.AcctUsed}
	opts := insurance.CallOptions{MsgID: c.NewMsgID(), InsuplcAdmdvs: st.InsuplcAdmdvs}
	first, _, err := c.Settle(ctx, opts, in)
	if err != nil {
		t.Fatal(err)
	}
	again, resp, err := c.Settle(ctx, opts, in)
	if err != nil || again.SetlInfo.SetlID != first.SetlInfo.SetlID || resp.MsgID != opts.MsgID {
		t.Fatalf("repeat: %v %+v", err, again.SetlInfo)
	}
	if n := len(sim.Settlements()); n != 1 {
		t.Fatalf("%d settlements for one msgid", n)
	}
	if balance(t, sim, zhangsan) != 125680-10331 {
		t.Fatal("account charged twice")
	}
	// The same msgid for another transaction is refused.
	_, err = c.PreSettle(ctx, opts, in)
	wantCode(t, err, ihos.EInvalid, "不能重复使用")
	// A new msgid for the settled batch: nothing left to settle.
	_, _, err = c.Settle(ctx, insurance.CallOptions{InsuplcAdmdvs: st.InsuplcAdmdvs}, in)
	wantCode(t, err, ihos.EInvalid, "没有待结算")
}

// settleTimesOut makes 2207 settle on the platform but answer too late.
func settleTimesOut(t *testing.T, sim *inssim.Sim, c *insurance.Client, st *insurance.OutpatientSettlement) {
	t.Helper()
	if err := sim.SetMode(inssim.Mode{Name: inssim.ModeSettleSlow, Delay: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c.Timeout = 300 * time.Millisecond
	err := st.Settle(context.Background(), c)
	wantCode(t, err, ihos.EUnavailable, "结算结果未知")
	if st.State != insurance.StateSettling || !st.NeedsResolve() || st.Setl != nil {
		t.Fatalf("after the timeout: %+v", st)
	}
	if recs := sim.Settlements(); len(recs) != 1 || recs[0].MsgID != st.SetlMsgID {
		t.Fatalf("the platform did not settle: %+v", recs)
	}
	sim.SetMode(inssim.Mode{Name: inssim.ModeUp})
	c.Timeout = 5 * time.Second
}

func TestSettleTimeoutResolvedByRepeat(t *testing.T) {
	sim, c, _ := start(t)
	st := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	settleTimesOut(t, sim, c, st)
	st = roundTrip(t, st)
	msgid := st.SetlMsgID
	if err := st.Resolve(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	recs := sim.Settlements()
	if st.State != insurance.StateSettled || len(recs) != 1 || st.Setl.SetlID != recs[0].SetlID || st.Setl.MedinsSetlID != msgid {
		t.Fatalf("resolved %+v, platform %+v", st, recs)
	}
	if call := st.Calls[len(st.Calls)-1]; call.Infno != "2207" || call.MsgID != msgid || call.Attempts != 2 || call.Outcome != insurance.OutcomeOK {
		t.Fatalf("2207 call = %+v", call)
	}
	if balance(t, sim, zhangsan) != 125680-10331 {
		t.Fatal("charged twice")
	}
	if err := st.Resolve(context.Background(), c); ihos.ErrorCode(err) != ihos.EConflict {
		t.Fatalf("resolve of a settled settlement: %v", err)
	}
}

func TestSettleTimeoutReversed(t *testing.T) {
	sim, c, _ := start(t)
	ctx := context.Background()
	st := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	settleTimesOut(t, sim, c, st)
	orig := st.SetlMsgID
	if err := st.ReverseSettle(ctx, c); err != nil {
		t.Fatal(err)
	}
	if st.State != insurance.StateFeesUploaded || len(st.Reversed) != 1 || st.Reversed[0] != orig || st.PreSetl != nil {
		t.Fatalf("after 2601: %+v", st)
	}
	if recs := sim.Settlements(); recs[0].Status != inssim.SetlReversed || balance(t, sim, zhangsan) != 125680 {
		t.Fatalf("platform after 2601: %+v", recs)
	}
	// The 2601 on the wire names the original.
	reqs := sim.Requests()
	var in struct {
		Data insurance.Reversal `json:"data"`
	}
	var env insurance.Request
	json.Unmarshal(reqs[len(reqs)-1].Body, &env)
	json.Unmarshal(env.Input, &in)
	if env.Infno != "2601" || in.Data.OMsgID != orig || in.Data.OInfno != "2207" || in.Data.PsnNo != st.PsnNo {
		t.Fatalf("2601 = %s", env.Input)
	}
	// The original msgid cannot settle any more.
	_, _, err := c.Settle(ctx, insurance.CallOptions{MsgID: orig, InsuplcAdmdvs: st.InsuplcAdmdvs}, insurance.SettleInput{PsnNo: st.PsnNo,
		MdtrtCertType: st.MdtrtCertType, MdtrtCertNo: st.MdtrtCertNo, MedType: st.MedType, MedfeeSumamt: st.MedfeeSumamt,
		PsnSetlway: insurance.PsnSetlwayByItem, MdtrtID: st.MdtrtID, ChrgBchno: st.ChrgBchno, Insutype: st.Insutype, AcctUsedFlag: "1"})
	wantCode(t, err, ihos.EInvalid, "冲正")
	// The patient starts again: new pre-settlement, new 2207.
	if err := st.PreSettle(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx, c); err != nil || st.State != insurance.StateSettled || st.SetlMsgID == orig {
		t.Fatalf("settle again: %v %+v", err, st)
	}
}

func TestResolveWhenTheFirst2207NeverArrived(t *testing.T) {
	sim, c, _ := start(t)
	st := throughPreSettle(t, c, identify(t, c, zhangsan, false))
	sim.SetMode(inssim.Mode{Name: inssim.ModeDown})
	wantCode(t, st.Settle(context.Background(), c), ihos.EUnavailable, "请勿重复缴费")
	if st.State != insurance.StateSettling || len(sim.Settlements()) != 0 {
		t.Fatalf("state %s, %d settlements", st.State, len(sim.Settlements()))
	}
	// Still down: still unknown, never assumed.
	wantCode(t, st.Resolve(context.Background(), c), ihos.EUnavailable, "")
	if st.State != insurance.StateSettling {
		t.Fatal("left settling without an answer")
	}
	sim.SetMode(inssim.Mode{Name: inssim.ModeUp})
	if err := st.Resolve(context.Background(), c); err != nil || st.State != insurance.StateSettled || st.Setl.PsnCashPay != 10331 {
		t.Fatalf("resolve: %v %+v", err, st.Setl)
	}
}

func TestReversalOfAMsgIDNeverSeen(t *testing.T) {
	sim, c, _ := start(t)
	ctx := context.Background()
	st := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	lost := c.NewMsgID()
	opts := insurance.CallOptions{InsuplcAdmdvs: st.InsuplcAdmdvs}
	if err := c.Reverse(ctx, opts, insurance.Reversal{PsnNo: st.PsnNo, OMsgID: lost, OInfno: "2207"}); err != nil {
		t.Fatal(err)
	}
	// Arriving late, the reversed 2207 is refused and settles nothing.
	opts.MsgID = lost
	_, _, err := c.Settle(ctx, opts, insurance.SettleInput{PsnNo: st.PsnNo, MdtrtCertType: st.MdtrtCertType, MdtrtCertNo: st.MdtrtCertNo,
		MedType: st.MedType, MedfeeSumamt: st.MedfeeSumamt, PsnSetlway: "01", MdtrtID: st.MdtrtID, ChrgBchno: st.ChrgBchno,
		Insutype: st.Insutype, AcctUsedFlag: "1"})
	wantCode(t, err, ihos.EInvalid, "已被冲正")
	if len(sim.Settlements()) != 0 {
		t.Fatal("settled after the reversal")
	}
	wantCode(t, c.Reverse(ctx, opts, insurance.Reversal{PsnNo: st.PsnNo, OMsgID: "short", OInfno: "2207"}), ihos.EInvalid, "原报文ID")
}

func TestPreSettlementChangedBefore2207(t *testing.T) {
	sim, c, _ := start(t)
	st := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	sim.SetMode(inssim.Mode{Name: inssim.ModeSplitChange})
	if err := st.Settle(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	// Both are kept: the patient was shown 103.31 from the account, and
	// must now be shown 103.31 in cash.
	if !st.SplitChanged || !insurance.PreSetlChanged(st.PreSetl, st.Setl) || st.PreSetl.AcctPay != 10331 ||
		st.Setl.AcctPay != 0 || st.Setl.PsnCashPay != 10331 || st.State != insurance.StateSettled {
		t.Fatalf("pre %+v final %+v", st.PreSetl, st.Setl)
	}
	same := *st.Setl
	if insurance.PreSetlChanged(&same, st.Setl) || !insurance.PreSetlChanged(nil, st.Setl) {
		t.Fatal("PreSetlChanged on equal or missing pre-settlements")
	}
}

func TestCheckSplit(t *testing.T) {
	good := insurance.SetlInfo{MedfeeSumamt: 10000, FundPaySumamt: 6000, AcctPay: 1000, PsnCashPay: 3000, PsnPartAmt: 4000}
	if err := insurance.CheckSplit(good, false); err != nil {
		t.Fatal(err)
	}
	incl := good
	incl.FundPaySumamt = 7000 // a province that counts the account in the fund
	if insurance.CheckSplit(incl, false) == nil || insurance.CheckSplit(incl, true) != nil {
		t.Fatal("fund including the account")
	}
	for name, mod := range map[string]func(*insurance.SetlInfo){
		"cash":     func(s *insurance.SetlInfo) { s.PsnCashPay++ },
		"psn part": func(s *insurance.SetlInfo) { s.PsnPartAmt = 3999 },
		"negative": func(s *insurance.SetlInfo) { s.AcctPay, s.PsnCashPay = -1000, 5000 },
	} {
		s := good
		mod(&s)
		if err := insurance.CheckSplit(s, false); ihos.ErrorCode(err) != ihos.EConflict || !strings.Contains(ihos.ErrorMessage(err), "医保结算金额不一致") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSplitMismatchLogged talks to a platform whose 2207 answer does not add
// up: the caller gets EConflict, the state keeps the answer for a 2208, and
// the call log has the reason.
func TestSplitMismatchLogged(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"infcode":0,"inf_refmsgid":"110000202601010000000000000001","output":{"setlinfo":{"setl_id":"S1","mdtrt_id":"M1",
			"medfee_sumamt":100.00,"fund_pay_sumamt":50.00,"acct_pay":10.00,"psn_cash_pay":30.00,"psn_part_amt":40.00},"setldetail":[]}}`))
	}))
	defer bad.Close()
	var logged []insurance.Exchange
	c := &insurance.Client{BaseURL: bad.URL, Fixmedins: insurance.Institution{Code: testFixmedins, Name: "示范医院", MdtrtareaAdmvs: "110105"},
		Operator: insurance.Operator{Type: insurance.OpterClerk, ID: "0042", Name: "收费员"},
		Observe:  func(_ context.Context, ex insurance.Exchange) { logged = append(logged, ex) }}
	st := &insurance.OutpatientSettlement{State: insurance.StatePreSettled, PsnNo: "P1", Insutype: "310", InsuplcAdmdvs: "110100",
		MdtrtCertType: "02", MdtrtCertNo: zhangsan, MedType: "11", AcctUsedFlag: "1", MdtrtID: "M1", ChrgBchno: "B1", MedfeeSumamt: 10000}
	err := st.Settle(context.Background(), c)
	wantCode(t, err, ihos.EConflict, "医保结算金额不一致")
	if st.State != insurance.StateSplitMismatch || st.Setl == nil || st.Setl.SetlID != "S1" {
		t.Fatalf("state %+v", st)
	}
	if len(logged) != 1 || !strings.Contains(logged[0].Err, "医保结算金额不一致") || logged[0].Infno != "2207" {
		t.Fatalf("log = %+v", logged)
	}
	if call := st.Calls[len(st.Calls)-1]; call.Outcome != insurance.OutcomeConflict {
		t.Fatalf("call = %+v", call)
	}
}

func TestBadInputs(t *testing.T) {
	sim, c, _ := start(t)
	ctx := context.Background()

	var paused inssim.Insured
	for _, p := range sim.Persons() {
		if p.HISID == inssim.PausedHISID {
			paused = p
		}
	}
	p, err := c.PersonInfo(ctx, insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: paused.IDNumber})
	if err != nil {
		t.Fatal(err)
	}
	_, err = insurance.NewOutpatientSettlement(p, insurance.CertIDCard, paused.IDNumber, true)
	wantCode(t, err, ihos.EConflict, "没有有效的医保参保信息")

	st := identify(t, c, zhangsan, true)
	wantCode(t, st.UploadFees(ctx, c, "B1", demoFees()), ihos.EConflict, "不能上传费用明细")
	wantCode(t, st.PreSettle(ctx, c), ihos.EConflict, "不能预结算")
	wantCode(t, st.Settle(ctx, c), ihos.EConflict, "请先预结算")
	wantCode(t, st.Register(ctx, c, insurance.OutpatientVisit{IptOtpNo: "MZ1"}), ihos.EInvalid, "医师编码")
	if st.Calls[len(st.Calls)-1].Outcome != insurance.OutcomeNotSent {
		t.Fatalf("call = %+v", st.Calls)
	}
	visit := insurance.OutpatientVisit{IptOtpNo: "MZ1", AtddrNo: "D1", DrName: "李医生", DeptCode: "A03", DeptName: "内科", Caty: "A03"}
	if err := st.Register(ctx, c, visit); err != nil {
		t.Fatal(err)
	}
	// The same outpatient number twice is refused by the platform.
	st2 := identify(t, c, zhangsan, true)
	wantCode(t, st2.Register(ctx, c, visit), ihos.EInvalid, "已办理医保挂号")

	n := len(sim.Requests())
	wantCode(t, st.UploadFees(ctx, c, "B1", nil), ihos.EInvalid, "没有需要上传的费用明细")
	zero := demoFees()
	zero[1].DetItemFeeSumamt = 0
	wantCode(t, st.UploadFees(ctx, c, "B1", zero), ihos.EInvalid, "金额应大于 0")
	dup := demoFees()
	dup[2].FeedetlSn = "F1"
	wantCode(t, st.UploadFees(ctx, c, "B1", dup), ihos.EInvalid, "流水号重复")
	if len(sim.Requests()) != n {
		t.Fatal("invalid fees were sent")
	}
	// Amount ≠ count × price: refused by the platform.
	wrong := demoFees()
	wrong[0].DetItemFeeSumamt = 2600
	wantCode(t, st.UploadFees(ctx, c, "B1", wrong), ihos.EInvalid, "与数量×单价不符")
	if err := st.UploadFees(ctx, c, "B1", demoFees()); err != nil {
		t.Fatal(err)
	}
	// A total that is not the uploaded lines' sum; a call without the
	// insured's area.
	in := insurance.SettleInput{PsnNo: st.PsnNo, MdtrtCertType: "02", MdtrtCertNo: zhangsan, MedType: "11", MedfeeSumamt: 15000,
		PsnSetlway: "01", MdtrtID: st.MdtrtID, ChrgBchno: "B1", Insutype: "310", AcctUsedFlag: "1"}
	_, err = c.PreSettle(ctx, insurance.CallOptions{InsuplcAdmdvs: st.InsuplcAdmdvs}, in)
	wantCode(t, err, ihos.EInvalid, "医疗费总额 150.00 与上传的费用明细合计 152.80 不符")
	in.MedfeeSumamt = 15280
	_, err = c.PreSettle(ctx, insurance.CallOptions{}, in)
	wantCode(t, err, ihos.EInvalid, "参保地医保区划")
	in.AcctUsedFlag = "2"
	_, err = c.PreSettle(ctx, insurance.CallOptions{}, in)
	wantCode(t, err, ihos.EInvalid, "个人账户使用标志")
	// A platform refusal of the first 2207 is final: back to presettled.
	if err := st.PreSettle(ctx, c); err != nil {
		t.Fatal(err)
	}
	sim.SetMode(inssim.Mode{Name: inssim.ModeError, Text: "医保中心结算服务维护中"})
	wantCode(t, st.Settle(ctx, c), ihos.EInvalid, "结算服务维护中")
	if st.State != insurance.StatePreSettled || st.SetlMsgID != "" {
		t.Fatalf("after a refused 2207: %+v", st)
	}
}

func TestReconcileTotals(t *testing.T) {
	sim, c, _ := start(t)
	ctx := context.Background()
	a := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	b := throughPreSettle(t, c, identify(t, c, hissim.DemoPatients[1].IDNumber, false)) // 李四, 310
	x := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	for _, st := range []*insurance.OutpatientSettlement{a, b, x} {
		if err := st.Settle(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Cancel(ctx, c); err != nil { // cancelled: out of the totals
		t.Fatal(err)
	}
	today := time.Now().In(ihos.Shanghai).Format("2006-01-02")
	q := insurance.StatementTotals{Insutype: "310", StmtBegndate: today, StmtEnddate: today,
		MedfeeSumamt:  a.Setl.MedfeeSumamt + b.Setl.MedfeeSumamt,
		FundPaySumamt: a.Setl.FundPaySumamt + b.Setl.FundPaySumamt, AcctPay: a.Setl.AcctPay + b.Setl.AcctPay, FixmedinsSetlCnt: 2}
	res, err := c.ReconcileTotals(ctx, insurance.CallOptions{}, q)
	if err != nil || !res.Balanced() {
		t.Fatalf("3201 = %+v, %v", res, err)
	}
	q.FixmedinsSetlCnt = 3
	if res, err := c.ReconcileTotals(ctx, insurance.CallOptions{}, q); err != nil || res.Balanced() || !strings.Contains(res.StmtRsltDscr, "2 笔") {
		t.Fatalf("3201 = %+v, %v", res, err)
	}

	resp, err := http.Get(sim.URL() + "/control/settlements?date=" + today)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Settlements []inssim.SettlementRecord `json:"settlements"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Settlements) != 3 || list.Settlements[2].Status != inssim.SetlCancelled {
		t.Fatalf("control list = %+v, %v", list, err)
	}
}

func TestSettleFieldNames(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want []string
	}{
		{"2201 input", insurance.Registration{}, []string{"psn_no", "insutype", "begntime", "mdtrt_cert_type", "mdtrt_cert_no", "ipt_otp_no", "atddr_no", "dr_name", "dept_code", "dept_name", "caty"}},
		{"2203 mdtrtinfo", insurance.MdtrtInfo{}, []string{"mdtrt_id", "psn_no", "med_type", "begntime", "main_cond_dscr", "dise_codg", "dise_name"}},
		{"2203 diseinfo", insurance.DiseInfo{}, []string{"diag_type", "diag_srt_no", "diag_code", "diag_name", "diag_dept", "dise_dor_no", "dise_dor_name", "diag_time", "vali_flag"}},
		{"2204 feedetail", insurance.FeeDetail{}, []string{"feedetl_sn", "mdtrt_id", "psn_no", "chrg_bchno", "rxno", "rx_circ_flag", "fee_ocur_time", "med_list_codg", "medins_list_codg", "det_item_fee_sumamt", "cnt", "pric", "sin_dos_dscr", "used_frqu_dscr", "prd_days", "medc_way_dscr", "bilg_dept_codg", "bilg_dr_codg", "hosp_appr_flag"}},
		{"2204 result", insurance.FeeResult{}, []string{"fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt", "chrgitm_lv"}},
		{"2206 input", insurance.SettleInput{}, []string{"psn_no", "mdtrt_cert_type", "mdtrt_cert_no", "med_type", "medfee_sumamt", "psn_setlway", "mdtrt_id", "chrg_bchno", "insutype", "acct_used_flag", "invono", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"}},
		{"setlinfo", insurance.SetlInfo{}, []string{"setl_id", "medfee_sumamt", "act_pay_dedc", "hifp_pay", "pool_prop_selfpay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt", "balc", "acct_mulaid_pay", "medins_setl_id", "clr_optins", "clr_way", "clr_type"}},
		{"setldetail", insurance.SetlDetail{}, []string{"fund_pay_type", "fund_payamt"}},
		{"2208 input", insurance.SettleCancel{}, []string{"setl_id", "mdtrt_id", "psn_no"}},
		{"2601 input", insurance.Reversal{}, []string{"psn_no", "omsgid", "oinfno"}},
	} {
		have := map[string]bool{}
		for _, k := range jsonKeys(c.v) {
			have[k] = true
		}
		for _, k := range c.want {
			if !have[k] {
				t.Errorf("%s lacks %s", c.name, k)
			}
		}
	}
}

// BenchmarkOutpatientSettlement measures 2201→2203→2204→2206→2207 against
// the simulator over loopback HTTP.
func BenchmarkOutpatientSettlement(b *testing.B) {
	sim, err := inssim.Start(context.Background(), inssim.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	c := &insurance.Client{BaseURL: sim.URL(), Fixmedins: insurance.Institution{Code: testFixmedins, Name: "示范医院", MdtrtareaAdmvs: "110105"},
		Operator: insurance.Operator{Type: insurance.OpterKiosk, ID: "K1", Name: "自助机"}}
	for b.Loop() {
		st := throughPreSettle(b, c, identify(b, c, hissim.DemoPatients[2].IDNumber, false))
		if err := st.Settle(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

// TestResolveFallsBackToReversal: the repeat of the lost 2207 is refused
// (here because the original was reversed meanwhile), which proves nothing
// about the first sending, so Resolve reverses by the original msgid.
func TestResolveFallsBackToReversal(t *testing.T) {
	sim, c, _ := start(t)
	ctx := context.Background()
	st := throughPreSettle(t, c, identify(t, c, zhangsan, true))
	settleTimesOut(t, sim, c, st)
	if err := c.Reverse(ctx, insurance.CallOptions{InsuplcAdmdvs: st.InsuplcAdmdvs}, insurance.Reversal{PsnNo: st.PsnNo, OMsgID: st.SetlMsgID, OInfno: "2207"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Resolve(ctx, c); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, call := range st.Calls[len(st.Calls)-2:] {
		codes = append(codes, call.Infno+":"+call.Outcome)
	}
	if st.State != insurance.StateFeesUploaded || strings.Join(codes, " ") != "2207:refused 2601:ok" || balance(t, sim, zhangsan) != 125680 {
		t.Fatalf("state %s, calls %v", st.State, codes)
	}
}

func TestCallLog(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		sim, c, _ := start(t)
		calls := &insurance.CallLog{DB: db}
		c.Observe = calls.Observe
		st := throughPreSettle(t, c, identify(t, c, zhangsan, true))
		settleTimesOut(t, sim, c, st)
		if err := st.Resolve(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		got, err := calls.ByMsgID(context.Background(), st.SetlMsgID)
		if err != nil {
			t.Fatal(err)
		}
		// The lost first sending (no answer) and the repeat that found it.
		if len(got) != 2 || got[0].Answered || got[0].Err == "" || !got[1].Answered || got[1].Infcode != 0 || got[1].Infno != "2207" {
			t.Fatalf("log = %+v", got)
		}
		if strings.Contains(got[1].Response, zhangsan) || strings.Contains(got[1].Request, zhangsan) || !strings.Contains(got[1].Response, st.Setl.SetlID) {
			t.Fatalf("masked bodies = %s / %s", got[1].Request, got[1].Response)
		}
	})
}
