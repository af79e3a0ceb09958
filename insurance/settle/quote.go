package settle

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"time"

	"ihos"
	"ihos/insurance"
	"ihos/insurance/mobile"
)

// QuoteRequest asks for a pre-settlement: what the fund, the personal
// account and the patient would pay for the fees.
type QuoteRequest struct {
	Channel    string `json:"channel"` // ihos.ChannelInsuranceSite or ihos.ChannelInsuranceMobile
	HospitalID string `json:"hospital_id"`
	PatientID  string `json:"patient_id"`
	// ECToken is the scanned e-voucher QR (展码) for the site channel.
	ECToken string `json:"ec_token,omitempty"`
	// PayAuthNo and UldLatlnt are what the insurance auth in WeChat/Alipay
	// handed the phone, for the mobile channel.
	PayAuthNo    string `json:"pay_auth_no,omitempty"`
	UldLatlnt    string `json:"uld_latlnt,omitempty"`
	HISPatientID string `json:"his_patient_id,omitempty"`
	// Fees are the HIS fees settled; none means one line of Total (a
	// consultation or visit fee the HIS does not itemise).
	Fees  []ihos.HISFee `json:"fees,omitempty"`
	Total int64         `json:"total"` // fen; must be the fees' sum when both are given
	// NoAccount keeps the personal account out (the patient's choice).
	NoAccount bool `json:"no_account,omitempty"`
}

// Quote is a pre-settlement the patient is shown. Settling it (Settle with
// Auth["quote_id"] = ID) may still split differently (the account was spent
// meanwhile); the payment service then asks the patient to confirm.
type Quote struct {
	ID        string     `json:"id"`
	Channel   string     `json:"channel"`
	PatientID string     `json:"patient_id"`
	Total     int64      `json:"total"`
	Split     ihos.Split `json:"split"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// mobileState is the state of a mobile (6201/6202) leg.
type mobileState struct {
	PayOrdID     string `json:"pay_ord_id"`
	PayToken     string `json:"pay_token"`
	MedOrgOrd    string `json:"med_org_ord"`
	ChrgBchno    string `json:"chrg_bchno"`
	PayAuthNo    string `json:"pay_auth_no"`
	AcctUsedFlag string `json:"acct_used_flag"`
	OrgBizSer    string `json:"org_biz_ser,omitempty"`
	OrdStas      string `json:"ord_stas,omitempty"`
}

// compact is an id without dashes, for the centres' order and batch numbers.
func compact(id string) string { return strings.ReplaceAll(id, "-", "") }

// Quote runs the pre-settlement and keeps it (a row of kind presettle) for
// Settle, which may come from another process after a restart.
func (s *Service) Quote(ctx context.Context, req QuoteRequest) (Quote, error) {
	fees, total, err := feesOf(req)
	if err != nil {
		return Quote{}, err
	}
	id := ihos.NewID()
	now := s.now()
	ttl := s.QuoteTTL
	if ttl <= 0 {
		ttl = DefaultQuoteTTL
	}
	r := &row{ID: id, HospitalID: s.Hospital, Kind: KindPresettle, Key: id, QuoteID: id, PatientID: ihos.Truncate(req.PatientID, 36),
		Channel: req.Channel, Status: StatusQuoted, Total: total, ExpiresAt: now.Add(ttl)}
	switch req.Channel {
	case ihos.ChannelInsuranceSite:
		err = s.quoteSite(ctx, req, fees, total, r)
	case ihos.ChannelInsuranceMobile:
		err = s.quoteMobile(ctx, req, fees, total, r)
	default:
		return Quote{}, ihos.Invalid(map[string]string{"channel": "医保支付方式无效"})
	}
	if err != nil {
		return Quote{}, err
	}
	if err := ihos.CheckSplit(total, r.Split); err != nil {
		return Quote{}, err
	}
	if _, err := s.insert(ctx, r); err != nil {
		return Quote{}, err
	}
	return quoteOf(r), nil
}

func quoteOf(r *row) Quote {
	return Quote{ID: r.ID, Channel: r.Channel, PatientID: r.PatientID, Total: r.Total, Split: r.Split, ExpiresAt: r.ExpiresAt}
}

// GetQuote returns a quote made before.
func (s *Service) GetQuote(ctx context.Context, id string) (Quote, error) {
	r, err := s.byKey(ctx, id)
	if err != nil {
		return Quote{}, ihos.Internal(err)
	}
	if r == nil || r.Kind != KindPresettle {
		return Quote{}, ihos.Errorf(ihos.ENotFound, "医保预结算不存在，请重新获取")
	}
	return quoteOf(r), nil
}

// feesOf checks the fees against the total; no fees make one line of the
// total.
func feesOf(req QuoteRequest) ([]ihos.HISFee, int64, error) {
	if len(req.Fees) == 0 {
		if req.Total <= 0 {
			return nil, 0, ihos.Invalid(map[string]string{"total": "金额必须大于 0"})
		}
		return []ihos.HISFee{{FeeID: "1", ItemCode: "001101000010000", ItemName: "诊查费", Quantity: "1", AmountFen: req.Total}}, req.Total, nil
	}
	if len(req.Fees) > 200 {
		return nil, 0, ihos.Invalid(map[string]string{"fees": "费用明细过多，请分次结算"})
	}
	var sum int64
	for i, f := range req.Fees {
		if f.AmountFen <= 0 || strings.TrimSpace(f.ItemCode) == "" {
			return nil, 0, ihos.Invalid(map[string]string{"fees": fmt.Sprintf("第 %d 条费用缺少项目编码或金额", i+1)})
		}
		sum += f.AmountFen
	}
	if req.Total != 0 && req.Total != sum {
		return nil, 0, ihos.Invalid(map[string]string{"total": fmt.Sprintf("金额 %s 元与费用合计 %s 元不一致", ihos.FormatYuan(req.Total), ihos.FormatYuan(sum))})
	}
	return req.Fees, sum, nil
}

// quantity is a fee's quantity as a positive decimal (1 when the HIS gave
// none or nonsense) and the unit price in yuan with six decimals, so that
// quantity × price is the amount, as 2204 checks.
func quantity(f ihos.HISFee) (cnt, pric string) {
	q, ok := new(big.Rat).SetString(strings.TrimSpace(f.Quantity))
	if !ok || q.Sign() <= 0 {
		q = big.NewRat(1, 1)
	}
	p := new(big.Rat).Quo(big.NewRat(f.AmountFen, 100), q)
	return q.FloatString(4), p.FloatString(6)
}

// visitFor is the department and doctor of the fees, else the service's.
func (s *Service) visitFor(fees []ihos.HISFee) Visit {
	v := s.Visit
	d := DefaultVisit
	pick := func(a *string, b string) {
		if *a == "" {
			*a = b
		}
	}
	if len(fees) > 0 {
		pick(&v.DeptCode, fees[0].DepartmentCode)
		pick(&v.DoctorCode, fees[0].DoctorCode)
	}
	pick(&v.DeptCode, d.DeptCode)
	pick(&v.DeptName, d.DeptName)
	pick(&v.Caty, d.Caty)
	pick(&v.DoctorCode, d.DoctorCode)
	pick(&v.DoctorName, d.DoctorName)
	pick(&v.DiagCode, d.DiagCode)
	pick(&v.DiagName, d.DiagName)
	return v
}

// quoteSite runs 1101 → 2201 → 2203 → 2204 → 2206 for the e-voucher shown.
// A visit registered before a later step failed is cancelled (2205, 2202),
// best effort.
func (s *Service) quoteSite(ctx context.Context, req QuoteRequest, fees []ihos.HISFee, total int64, r *row) (err error) {
	c, err := s.national()
	if err != nil {
		return err
	}
	token, err := insurance.ParseVoucherQR(req.ECToken)
	if err != nil {
		return err
	}
	p, err := c.PersonInfo(ctx, insurance.PersonQuery{MdtrtCertType: insurance.CertECToken, MdtrtCertNo: token})
	if err != nil {
		return err
	}
	flow, err := insurance.NewOutpatientSettlement(p, insurance.CertECToken, token, !req.NoAccount)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.abandonSite(ctx, c, flow)
		}
	}()
	v := s.visitFor(fees)
	now := s.now()
	if err = flow.Register(ctx, c, insurance.OutpatientVisit{IptOtpNo: "Q" + compact(r.ID)[:19], AtddrNo: v.DoctorCode, DrName: v.DoctorName,
		DeptCode: v.DeptCode, DeptName: v.DeptName, Caty: v.Caty, Begntime: now}); err != nil {
		return err
	}
	at := now.In(ihos.Shanghai).Format(insurance.InfTimeFormat)
	if err = flow.UploadVisit(ctx, c, insurance.VisitInfo{
		MdtrtInfo: insurance.MdtrtInfo{MainCondDscr: v.DiagName, DiseCodg: v.DiagCode, DiseName: v.DiagName},
		DiseInfo: []insurance.DiseInfo{{DiagType: insurance.DiagTypeWestern, DiagSrtNo: 1, DiagCode: v.DiagCode, DiagName: v.DiagName,
			DiagDept: v.DeptName, DiseDorNo: v.DoctorCode, DiseDorName: v.DoctorName, DiagTime: at, ValiFlag: insurance.ValiFlagValid}},
	}); err != nil {
		return err
	}
	lines := make([]insurance.FeeDetail, len(fees))
	for i, f := range fees {
		cnt, pric := quantity(f)
		sn := f.FeeID
		if sn == "" {
			sn = fmt.Sprint(i + 1)
		}
		lines[i] = insurance.FeeDetail{FeedetlSn: ihos.Truncate(sn, 30), DiseCodg: v.DiagCode, FeeOcurTime: at,
			MedListCodg: f.ItemCode, MedinsListCodg: f.ItemCode, DetItemFeeSumamt: insurance.Yuan(f.AmountFen),
			Cnt: insurance.Number(cnt), Pric: insurance.Number(pric), BilgDeptCodg: v.DeptCode, BilgDeptName: v.DeptName,
			BilgDrCodg: v.DoctorCode, BilgDrName: v.DoctorName, HospApprFlag: insurance.HospApprFlagApproved}
	}
	if err = flow.UploadFees(ctx, c, "C"+compact(r.ID)[:19], lines); err != nil {
		return err
	}
	if err = flow.PreSettle(ctx, c); err != nil {
		return err
	}
	split, err := siteSplit(flow.PreSetl, c.Fixmedins.FundIncludesAcct)
	if err == nil {
		err = ihos.CheckSplit(total, split)
	}
	if err != nil {
		return err
	}
	r.Split, r.Insutype = split, flow.Insutype
	encode(r, flow)
	return nil
}

// abandonSite cancels the fees and the registration of a quote that did
// not complete, so the visit does not stay open at the platform.
func (s *Service) abandonSite(ctx context.Context, c *insurance.Client, flow *insurance.OutpatientSettlement) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if flow.State == insurance.StateFeesUploaded || flow.State == insurance.StatePreSettled {
		if err := flow.CancelFees(ctx, c); err != nil {
			s.log().Warn("settle: cancel fees of an abandoned quote", "mdtrt_id", flow.MdtrtID, "err", err)
			return
		}
	}
	if flow.State == insurance.StateRegistered || flow.State == insurance.StateVisitUploaded {
		if err := flow.CancelRegistration(ctx, c); err != nil {
			s.log().Warn("settle: cancel registration of an abandoned quote", "mdtrt_id", flow.MdtrtID, "err", err)
		}
	}
}

// siteSplit is the split of a 2206/2207 answer. The hospital's share
// (hosp_part_amt) has no place in a payment and must be zero.
func siteSplit(in *insurance.SetlInfo, fundIncludesAcct bool) (ihos.Split, error) {
	if in == nil {
		return ihos.Split{}, ihos.Errorf(ihos.EConflict, "医保平台未返回结算金额")
	}
	if in.HospPartAmt != 0 {
		return ihos.Split{}, ihos.Errorf(ihos.EConflict, "医保结算含医院负担金额 %s 元，不能在线支付，请到窗口办理", ihos.FormatYuan(int64(in.HospPartAmt)))
	}
	fund := in.FundPaySumamt
	if fundIncludesAcct {
		fund -= in.AcctPay
	}
	sp := ihos.Split{Fund: int64(fund), Account: int64(in.AcctPay), Cash: int64(in.PsnCashPay)}
	return sp, ihos.CheckSplit(int64(in.MedfeeSumamt), sp)
}

// quoteMobile uploads the fees (6201) with the patient's payAuthNo; the
// centre's pre-settlement in the answer is the quote (all cash when the
// centre sends none: 6202 then tells, and the patient confirms).
func (s *Service) quoteMobile(ctx context.Context, req QuoteRequest, fees []ihos.HISFee, total int64, r *row) error {
	c, err := s.mobile()
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.PayAuthNo) == "" {
		return ihos.Invalid(map[string]string{"pay_auth_no": "缺少医保移动支付授权码，请先完成医保授权"})
	}
	v := s.visitFor(fees)
	now := s.now()
	at := now.In(ihos.Shanghai).Format(insurance.InfTimeFormat)
	st := mobileState{MedOrgOrd: "M" + compact(r.ID)[:31], ChrgBchno: "C" + compact(r.ID)[:19], PayAuthNo: strings.TrimSpace(req.PayAuthNo),
		AcctUsedFlag: insurance.AcctUsed}
	if req.NoAccount {
		st.AcctUsedFlag = insurance.AcctNotUsed
	}
	in := mobile.FeeUpload{MedOrgOrd: st.MedOrgOrd, RxCircFlag: insurance.RxCircFlagNo, Begntime: at, IptOtpNo: "Q" + compact(r.ID)[:19],
		AtddrNo: v.DoctorCode, DeptCode: v.DeptCode, Caty: v.Caty, MedType: insurance.MedTypeOutpatient, MedfeeSumamt: insurance.Yuan(total),
		AcctUsedFlag: st.AcctUsedFlag, PsnSetlway: insurance.PsnSetlwayByItem, ChrgBchno: st.ChrgBchno, PayAuthNo: st.PayAuthNo,
		UldLatlnt: req.UldLatlnt, MdtrtCertType: insurance.CertECToken,
		DiseInfoList: []mobile.DiseInfo{{DiagType: insurance.DiagTypeWestern, DiagSrtNo: "1", DiagCode: v.DiagCode, DiagName: v.DiagName,
			DiagDept: v.DeptName, DiseDorNo: v.DoctorCode, DiseDorName: v.DoctorName, DiagTime: at, ValiFlag: insurance.ValiFlagValid}}}
	for i, f := range fees {
		cnt, _ := quantity(f)
		sn := f.FeeID
		if sn == "" {
			sn = fmt.Sprint(i + 1)
		}
		q, _ := new(big.Rat).SetString(cnt)
		pric := new(big.Rat).Quo(big.NewRat(f.AmountFen, 1), q) // fen, rounded to the fen below
		pf := new(big.Int).Quo(pric.Num(), pric.Denom()).Int64()
		in.FeeDetailList = append(in.FeeDetailList, mobile.FeeDetail{FeedetlSn: ihos.Truncate(sn, 30), ChrgBchno: st.ChrgBchno,
			RxCircFlag: insurance.RxCircFlagNo, FeeOcurTime: at, MedListCodg: f.ItemCode, MedinsListCodg: f.ItemCode,
			DetItemFeeSumamt: insurance.Yuan(f.AmountFen), Cnt: cnt, Pric: insurance.Yuan(pf), BilgDeptCodg: v.DeptCode,
			BilgDrCodg: v.DoctorCode, HospApprFlag: insurance.HospApprFlagApproved})
	}
	res, err := c.Upload(ctx, in)
	if err != nil {
		return err
	}
	st.PayOrdID, st.PayToken = res.PayOrdID, res.PayToken
	r.Split = ihos.Split{Cash: total}
	if p := res.ExtData.PreSetl; p != nil {
		r.Split = ihos.Split{Fund: int64(p.FundPaySumamt), Account: int64(p.AcctPay), Cash: int64(p.PsnCashPay)}
	}
	r.SetlID = st.PayOrdID
	encode(r, st)
	return nil
}
