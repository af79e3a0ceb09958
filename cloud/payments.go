package cloud

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/accounts"
	"ihos/insurance/settle"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/paychannel"
	"ihos/payments"
	"ihos/sync"
)

// PayChannelConfig is how the cloud reaches the online payment channel
// (WeChat-Pay-v3-like, package paychannel) for the self-pay (cash) leg. The
// demo's pay simulator writes these values under "paychannel" in its
// credentials file. With URL empty the payment service still runs (listing,
// refunds of nothing) but a self-pay payment cannot be created.
type PayChannelConfig struct {
	URL      string `json:"url" env:"IHOS_PAYCHANNEL_URL"`
	MchID    string `json:"mchid" env:"IHOS_PAYCHANNEL_MCHID"`
	AppID    string `json:"appid" env:"IHOS_PAYCHANNEL_APPID"`
	SerialNo string `json:"serial_no" env:"IHOS_PAYCHANNEL_SERIAL_NO"`
	// Algorithm is how requests, answers and notifies are signed: "RSA"
	// (default; WECHATPAY2-SHA256-RSA2048, notifies AES-256-GCM) or "SM2",
	// the channel's 国密 option (WECHATPAY2-SM2-WITH-SM3, notifies SM4-GCM),
	// which costs a fraction of RSA-2048's CPU per call. With SM2, SerialNo
	// is the SM2 API certificate's serial and the platform certificate is
	// the channel's SM2 one.
	Algorithm string `json:"algorithm" env:"IHOS_PAYCHANNEL_ALGORITHM"`
	// MerchantKey is the path of the merchant's RSA private key (PEM): it
	// signs every request with Algorithm RSA, and the JSAPI payment
	// parameters always (wx.requestPayment takes only RSA). The key itself
	// never goes into the config.
	MerchantKey string `json:"merchant_key" env:"IHOS_PAYCHANNEL_MERCHANT_KEY"`
	// MerchantSM2Key is the path of the merchant's SM2 private key (PEM),
	// which signs every request with Algorithm SM2.
	MerchantSM2Key string `json:"merchant_sm2_key" env:"IHOS_PAYCHANNEL_MERCHANT_SM2_KEY"`
	// APIv3Key is the 32-character key notifies are encrypted with.
	APIv3Key string `json:"apiv3_key" env:"IHOS_PAYCHANNEL_APIV3_KEY"`
	// PlatformCertURL is fetched once at start for the platform certificate
	// that answers and notifies are verified with; PlatformCert (a PEM file
	// path, certificate or public key) is used instead when set.
	PlatformCertURL string `json:"platform_cert_url" env:"IHOS_PAYCHANNEL_PLATFORM_CERT_URL"`
	PlatformCert    string `json:"platform_cert" env:"IHOS_PAYCHANNEL_PLATFORM_CERT"`
	// PlatformSerial pins the platform certificate's serial; default the
	// serial of the certificate read.
	PlatformSerial string `json:"platform_serial" env:"IHOS_PAYCHANNEL_PLATFORM_SERIAL"`
	// NotifyURL is the public address of our notify endpoint, POST
	// /api/pay/notify; default http://<http>/api/pay/notify, which only
	// works when the channel can reach the cloud's listen address directly.
	NotifyURL string `json:"notify_url" env:"IHOS_PAYCHANNEL_NOTIFY_URL"`
	// PayTimeout is how long a payment may stay unpaid before it is closed
	// (default 30 minutes); QueryAfter is how long the service waits for a
	// notify before it first queries an order (default 5 s). Tests shorten
	// both.
	PayTimeout time.Duration `json:"pay_timeout" env:"IHOS_PAY_TIMEOUT"`
	QueryAfter time.Duration `json:"query_after" env:"IHOS_PAY_QUERY_AFTER"`
}

// errNoChannel is what a self-pay payment gets when no channel is configured.
var errNoChannel = ihos.Errorf(ihos.EUnavailable, "尚未配置在线支付渠道")

// newPayClient builds the channel client from the configuration: the
// merchant key from its file and the platform certificate from its file or
// URL.
func newPayClient(ctx context.Context, cfg PayChannelConfig) (*paychannel.Client, error) {
	bad := func(format string, args ...any) error {
		return ihos.Errorf(ihos.EInvalid, "在线支付渠道配置（paychannel）有误："+format, args...)
	}
	if cfg.MchID == "" || cfg.AppID == "" || cfg.SerialNo == "" {
		return nil, bad("须填写 mchid、appid 和 serial_no")
	}
	if len(cfg.APIv3Key) != 32 {
		return nil, bad("apiv3_key 须为 32 个字符")
	}
	scheme := paychannel.AuthScheme
	switch strings.ToUpper(cfg.Algorithm) {
	case "", "RSA":
	case "SM2":
		scheme = paychannel.AuthSchemeSM2
	default:
		return nil, bad("algorithm 须为 RSA 或 SM2，而不是 %q", cfg.Algorithm)
	}
	readKey := func(name, path, want string) (crypto.Signer, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, bad("无法读取商户私钥文件 %s（%v）", name, err)
		}
		key, err := paychannel.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, bad("商户私钥文件 %s 无法解析（%v）", path, err)
		}
		if paychannel.SchemeOf(key) != want {
			return nil, bad("商户私钥文件 %s 的算法与 %s 不符", path, name)
		}
		return key, nil
	}
	rsaKey, err := readKey("merchant_key", cfg.MerchantKey, paychannel.AuthScheme)
	if err != nil {
		return nil, err
	}
	key := rsaKey
	if scheme == paychannel.AuthSchemeSM2 {
		if key, err = readKey("merchant_sm2_key", cfg.MerchantSM2Key, paychannel.AuthSchemeSM2); err != nil {
			return nil, err
		}
	}
	var cert []byte
	switch {
	case cfg.PlatformCert != "":
		if cert, err = os.ReadFile(cfg.PlatformCert); err != nil {
			return nil, bad("无法读取平台证书文件 platform_cert（%v）", err)
		}
	case cfg.PlatformCertURL != "":
		if cert, err = fetch(ctx, cfg.PlatformCertURL); err != nil {
			return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "无法下载支付平台证书 " + cfg.PlatformCertURL, Err: err}
		}
	default:
		return nil, bad("须填写 platform_cert 或 platform_cert_url")
	}
	pub, serial, err := paychannel.ParsePublicKeyPEM(cert)
	if err != nil {
		return nil, bad("支付平台证书无法解析（%v）", err)
	}
	if paychannel.SchemeOf(pub) != scheme {
		return nil, bad("支付平台证书的算法与 algorithm（%s）不符", cfg.Algorithm)
	}
	if cfg.PlatformSerial != "" {
		serial = cfg.PlatformSerial
	}
	// One order costs several calls from many goroutines: keep enough idle
	// connections to the channel that they are reused, not re-dialled.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &paychannel.Client{BaseURL: cfg.URL, MchID: cfg.MchID, AppID: cfg.AppID, SerialNo: cfg.SerialNo, Key: key,
		PaySignKey: rsaKey.(*rsa.PrivateKey), PlatformKey: pub, PlatformSerial: serial, APIv3Key: []byte(cfg.APIv3Key), HTTP: &http.Client{Transport: tr}}, nil
}

func fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// channel is payments.Channel over the channel client. The payment service
// reads every error as "outcome unknown" and asks again, so only answers
// that really are final are mapped to states; everything else stays an
// error.
type channel struct {
	c         *paychannel.Client
	notifyURL string
}

// maxDescription is the channel's limit on an order's description, in bytes.
const maxDescription = 127

// Create opens a JSAPI order when the payer's openid is known (the phone),
// else a Native order whose code_url the kiosk shows as a QR code.
func (ch *channel) Create(ctx context.Context, o payments.ChannelOrder) (payments.ChannelCreated, error) {
	// time_expire goes on the wire in whole seconds: round up, or the
	// channel would close the order up to a second before the payment's
	// deadline, and a query in that second would find it closed by the
	// channel (recorded as failed) instead of closed by us at the deadline.
	expire := o.ExpireAt
	if t := expire.Truncate(time.Second); t.Before(expire) {
		expire = t.Add(time.Second)
	}
	order := paychannel.Order{OutTradeNo: o.OutTradeNo, Description: truncateBytes(o.Description, maxDescription), Total: o.Amount,
		NotifyURL: ch.notifyURL, TimeExpire: expire, Attach: o.Attach, OpenID: o.PayerID}
	if order.Description == "" {
		order.Description = "互联网医院"
	}
	if o.PayerID == "" {
		code, err := ch.c.CreateNative(ctx, order)
		if err != nil {
			return payments.ChannelCreated{}, err
		}
		return payments.ChannelCreated{CodeURL: code}, nil
	}
	prepay, err := ch.c.CreateJSAPI(ctx, order)
	if err != nil {
		return payments.ChannelCreated{}, err
	}
	pp, err := ch.c.JSAPIPayParams(prepay)
	if err != nil {
		return payments.ChannelCreated{}, err
	}
	return payments.ChannelCreated{PrepayID: prepay, PayParams: map[string]string{
		"appId": pp.AppID, "timeStamp": pp.TimeStamp, "nonceStr": pp.NonceStr, "package": pp.Package, "signType": pp.SignType, "paySign": pp.PaySign,
	}}, nil
}

// Query maps the channel's trade state; an order the channel does not know
// (ORDER_NOT_EXIST) is ChannelNotFound, any other error stays unknown.
func (ch *channel) Query(ctx context.Context, outTradeNo string) (payments.ChannelState, error) {
	t, err := ch.c.Query(ctx, outTradeNo)
	if err != nil {
		if paychannel.ChannelCode(err) == paychannel.CodeOrderNotExist {
			return payments.ChannelState{State: payments.ChannelNotFound}, nil
		}
		return payments.ChannelState{}, err
	}
	st := payments.ChannelState{TransactionID: t.TransactionID}
	switch t.TradeState {
	case paychannel.TradeSuccess, paychannel.TradeRefund:
		st.State, st.Amount, st.PaidAt = payments.ChannelPaid, t.Amount.Total, t.SuccessAt()
	case paychannel.TradeNotPay, paychannel.TradeUserPaying:
		st.State = payments.ChannelPending
	case paychannel.TradePayError:
		st.State = payments.ChannelFailed
	case paychannel.TradeClosed, paychannel.TradeRevoked:
		st.State = payments.ChannelClosed
	default:
		return payments.ChannelState{}, fmt.Errorf("paychannel: unknown trade state %q", t.TradeState)
	}
	return st, nil
}

// Close succeeds for an order that is closed, unknown to the channel, or
// already paid: the service queries right after closing, and that query —
// not Close — tells it the order was paid. (Returning ORDERPAID as an error
// would make the service retry the close for ever.)
func (ch *channel) Close(ctx context.Context, outTradeNo string) error {
	err := ch.c.Close(ctx, outTradeNo)
	switch paychannel.ChannelCode(err) {
	case paychannel.CodeOrderNotExist, paychannel.CodeOrderClosed, paychannel.CodeOrderPaid:
		return nil
	}
	return err
}

// Refund submits (or, with the same out_refund_no, re-submits) a refund;
// refund notifies go to the same endpoint as payment notifies.
func (ch *channel) Refund(ctx context.Context, r payments.ChannelRefund) (payments.RefundState, error) {
	ref, err := ch.c.Refund(ctx, paychannel.RefundOrder{OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo,
		Reason: truncateBytes(r.Reason, 80), NotifyURL: ch.notifyURL, Refund: r.Amount, Total: r.Total})
	if err != nil {
		return payments.RefundState{}, err
	}
	return refundState(ref.Status, ref.Amount.Refund, ref.RefundID)
}

// QueryRefund maps a refund's state; a refund the channel never received
// (RESOURCE_NOT_EXISTS) is RefundNotFound, so the service submits it.
func (ch *channel) QueryRefund(ctx context.Context, outRefundNo string) (payments.RefundState, error) {
	ref, err := ch.c.QueryRefund(ctx, outRefundNo)
	if err != nil {
		if paychannel.ChannelCode(err) == paychannel.CodeResourceMissing {
			return payments.RefundState{State: payments.RefundNotFound}, nil
		}
		return payments.RefundState{}, err
	}
	return refundState(ref.Status, ref.Amount.Refund, ref.RefundID)
}

func refundState(status string, amount int64, id string) (payments.RefundState, error) {
	st := payments.RefundState{Amount: amount, RefundID: id, Message: status}
	switch status {
	case paychannel.RefundSuccess:
		st.State = payments.LegResultSucceeded
	case paychannel.RefundProcessing:
		st.State = payments.LegResultPending
	case paychannel.RefundAbnormal, paychannel.RefundClosed:
		st.State = payments.LegResultFailed
		st.Message = "渠道退款状态：" + status
	default:
		return payments.RefundState{}, fmt.Errorf("paychannel: unknown refund status %q", status)
	}
	return st, nil
}

// parseNotify is the payments.NotifyParser over the channel client: the
// client verifies the platform signature, the timestamp and the merchant and
// decrypts the resource. The service has read the body already, so it is put
// back for ParseNotify to read again.
func (ch *channel) parseNotify(r *http.Request, body []byte) (payments.Notify, error) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	pn, err := ch.c.ParseNotify(r)
	if err != nil {
		return payments.Notify{}, err
	}
	n := payments.Notify{ID: pn.ID}
	if sec, err := strconv.ParseInt(r.Header.Get(paychannel.HeaderTimestamp), 10, 64); err == nil {
		n.SignedAt = time.Unix(sec, 0)
	}
	switch {
	case pn.Transaction != nil:
		t := pn.Transaction
		n.Source, n.OrderNo, n.TransactionID, n.Amount = payments.NotifyChannel, t.OutTradeNo, t.TransactionID, t.Amount.Total
		switch t.TradeState {
		case paychannel.TradeSuccess, paychannel.TradeRefund:
			n.State = payments.ChannelPaid
		case paychannel.TradePayError:
			n.State = payments.ChannelFailed
		case paychannel.TradeClosed, paychannel.TradeRevoked:
			n.State = payments.ChannelClosed
		default:
			n.State = payments.ChannelPending
		}
	case pn.Refund != nil:
		rn := pn.Refund
		n.Source, n.OrderNo, n.TransactionID, n.Amount = payments.NotifyRefund, rn.OutRefundNo, rn.RefundID, rn.Amount.Refund
		st, err := refundState(rn.RefundStatus, rn.Amount.Refund, rn.RefundID)
		if err != nil {
			return payments.Notify{}, ihos.Errorf(ihos.EInvalid, "退款通知状态无法识别：%s", ihos.Truncate(rn.RefundStatus, 20))
		}
		n.State = st.State
	default:
		return payments.Notify{}, ihos.Errorf(ihos.EInvalid, "支付通知内容不正确")
	}
	return n, nil
}

// noChannel stands in when no channel is configured: every call fails the
// same clear way (the patient API refuses before creating anything).
type noChannel struct{}

func (noChannel) Create(context.Context, payments.ChannelOrder) (payments.ChannelCreated, error) {
	return payments.ChannelCreated{}, errNoChannel
}
func (noChannel) Query(context.Context, string) (payments.ChannelState, error) {
	return payments.ChannelState{}, errNoChannel
}
func (noChannel) Close(context.Context, string) error { return errNoChannel }
func (noChannel) Refund(context.Context, payments.ChannelRefund) (payments.RefundState, error) {
	return payments.RefundState{}, errNoChannel
}
func (noChannel) QueryRefund(context.Context, string) (payments.RefundState, error) {
	return payments.RefundState{}, errNoChannel
}

func (noChannel) parseNotify(*http.Request, []byte) (payments.Notify, error) {
	return payments.Notify{}, errNoChannel
}

// truncateBytes cuts s to at most n bytes on a character boundary.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// payAPI is the minimal JSON API a payer's client uses: create and pay,
// look at, and cancel a self-pay payment.
//
// The patient's phone calls it with their own session and acts only for the
// members of their account (patientAuth); the console's staff session and
// the command-line token need "payments.write" and act for anyone.
type payAPI struct {
	svc        *payments.Service
	hospitals  *Hospitals
	configured bool
	// insurance reads back the quote an insurance order pays (nil: no
	// insurance payments).
	insurance *settle.Remote
}

// OrderRequest is the body of POST /api/pay/orders.
type OrderRequest struct {
	HospitalID   string `json:"hospital_id"`
	BusinessType string `json:"business_type"`
	BusinessID   string `json:"business_id"`
	PatientID    string `json:"patient_id"`
	DoctorID     string `json:"doctor_id"`
	DepartmentID string `json:"department_id"`
	Amount       int64  `json:"amount"` // fen
	Subject      string `json:"subject"`
	// OpenID is the payer's id at the channel: a JSAPI order (pay_params for
	// wx.requestPayment) when set, a Native order (code_url) when not.
	OpenID string `json:"openid"`
	// Channel is selfpay (default) or insurance_mobile / insurance_site;
	// an insurance order pays the quote QuoteID (POST
	// /api/pay/insurance/quote) with the patient's PayAuthNo.
	Channel   string `json:"channel"`
	QuoteID   string `json:"quote_id"`
	PayAuthNo string `json:"pay_auth_no"`
}

func (a payAPI) routes(mux *http.ServeMux, pa patientAuth) {
	guard := pa.guard(mux)
	handle := func(pattern string, fn patientFunc) { guard(pattern, "payments.write", fn) }
	handle("POST /api/pay/orders", func(ctx context.Context, pt *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		var req OrderRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if pt != nil {
			if ownRoute[req.BusinessType] {
				return errOwnRoute
			}
			var err error
			if req.HospitalID, err = hospital(pt, req.HospitalID); err != nil {
				return err
			}
			m, err := pa.member(ctx, pt, req.PatientID)
			if err != nil {
				return err
			}
			req.PatientID = m.PatientID
		}
		res, err := a.createAndPay(ctx, req)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, res)
		return nil
	})
	handle("GET /api/pay/orders/{id}", func(ctx context.Context, pt *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		// ?refresh=1: the client is back from the payment sheet and wants
		// the outcome now rather than at the resolver's next round. A
		// patient's payment is checked to be theirs before it is resolved.
		id, refresh := r.PathValue("id"), r.URL.Query().Get("refresh") == "1"
		var p *ihos.Payment
		var err error
		if pt != nil || !refresh {
			if p, err = a.get(ctx, pa, pt, id); err != nil {
				return err
			}
		}
		if refresh {
			if p, err = a.svc.Resolve(ctx, id); err != nil {
				return err
			}
		}
		web.WriteJSON(w, http.StatusOK, p)
		return nil
	})
	handle("POST /api/pay/orders/{id}/cancel", func(ctx context.Context, pt *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Reason string `json:"reason"`
		}
		if err := web.DecodeOptionalJSON(r, &req); err != nil {
			return err
		}
		if pt != nil {
			if _, err := a.get(ctx, pa, pt, r.PathValue("id")); err != nil {
				return err
			}
		}
		p, err := a.svc.Cancel(ctx, r.PathValue("id"), payments.CancelRequest{Reason: req.Reason})
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, p)
		return nil
	})
}

// ownRoute are the business types a patient pays through their own route,
// which charges the business's amount (a booking's fee, the HIS's fees): the
// business treats any paid payment of its id as its own, so a patient must
// not open one here with an amount of their choosing.
// A prescription's amount is its approved price (prescriptions.Payable).
var ownRoute = map[string]bool{ihos.PayConsultation: true, ihos.PayOutpatientBill: true, ihos.PayPrescription: true}

var errOwnRoute = ihos.Errorf(ihos.EForbidden, "该费用请在预约详情或门诊缴费中支付")

// errNoPayment answers a patient asking for a payment not on their account,
// as the payment service answers one that does not exist.
var errNoPayment = ihos.Errorf(ihos.ENotFound, "支付订单不存在")

// get returns payment id; for a patient (pt non-nil) only one of their
// members', someone else's being answered as not found.
func (a payAPI) get(ctx context.Context, pa patientAuth, pt *accounts.Patient, id string) (*ihos.Payment, error) {
	p, err := a.svc.Get(ctx, id)
	if err != nil || pt == nil {
		return p, err
	}
	ok, err := pa.owns(ctx, pt, p.PatientID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoPayment
	}
	return p, nil
}

// createAndPay records the payment (or finds the business's active one) and
// opens its order at the channel.
func (a payAPI) createAndPay(ctx context.Context, req OrderRequest) (*payments.PayResult, error) {
	req.HospitalID = strings.TrimSpace(req.HospitalID)
	if req.HospitalID == "" || !a.hospitals.Known(req.HospitalID) {
		// Every payment row replicates to its hospital: it must name one.
		return nil, ihos.Invalid(map[string]string{"hospital_id": "医院不存在或未启用"})
	}
	if req.Channel == "" {
		req.Channel = ihos.ChannelSelfPay
	}
	var pre *ihos.Split
	var auth map[string]string
	if req.Channel != ihos.ChannelSelfPay {
		q, err := a.insuranceQuote(ctx, req)
		if err != nil {
			return nil, err
		}
		req.Amount, pre = q.Total, &q.Split
		auth = map[string]string{"quote_id": q.ID, "pay_auth_no": req.PayAuthNo}
	}
	if !a.configured && (pre == nil || pre.Cash > 0) {
		return nil, errNoChannel // before anything is recorded
	}
	if strings.TrimSpace(req.Subject) == "" {
		req.Subject = ihos.BusinessTypeLabels[req.BusinessType]
	}
	p, err := a.svc.Create(ctx, payments.NewPayment{HospitalID: req.HospitalID, BusinessType: req.BusinessType, BusinessID: req.BusinessID,
		PatientID: req.PatientID, DoctorID: req.DoctorID, DepartmentID: req.DepartmentID, Channel: req.Channel,
		Subject: req.Subject, Total: req.Amount, PreSettlement: pre})
	if err != nil {
		return nil, err
	}
	if p.Total != req.Amount || p.PatientID != req.PatientID || p.Channel != req.Channel {
		// Create handed back the business's payment already under way.
		return nil, ihos.Errorf(ihos.EConflict, "该业务已有一笔待支付订单（%s 元），请先完成或取消", ihos.FormatYuan(p.Total))
	}
	return a.svc.Pay(ctx, p.ID, payments.PayRequest{PayerID: req.OpenID, Auth: auth})
}

// startPayments builds the payment service with its channel and registers
// its routes: the channel's notify (no session: the platform signature is
// the authentication), the console's list and refunds, and the payer API.
func startPayments(ctx context.Context, cfg Config, n *node.Node, a *App, mux *http.ServeMux) error {
	svc := &payments.Service{
		DB: n.DB,
		// The insurance legs run on each hospital's appliance, reached
		// through the sync RPC (cloud/insurance.go).
		Insurance: settle.Remote{Link: a.Link, DB: n.DB},
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each row goes to its own hospital
		},
		AfterCommit: a.Link.Kick,
		PayTimeout:  cfg.PayChannel.PayTimeout,
		QueryAfter:  cfg.PayChannel.QueryAfter,
	}
	pc := cfg.PayChannel
	parse := noChannel{}.parseNotify
	svc.Channel = noChannel{}
	if pc.URL != "" {
		client, err := newPayClient(ctx, pc)
		if err != nil {
			return err
		}
		if pc.NotifyURL == "" {
			pc.NotifyURL = "http://" + n.Config.HTTP + "/api/pay/notify"
		}
		ch := &channel{c: client, notifyURL: pc.NotifyURL}
		svc.Channel, parse = ch, ch.parseNotify
	}
	a.Payments = svc
	mux.Handle("POST /api/pay/notify", svc.NotifyHandler(parse))
	svc.AdminRoutes(mux, n.AuthorizeCLIOr)
	svc.RefundRoutes(mux, n.AuthorizeCLIOr)
	remote := settle.Remote{Link: a.Link, DB: n.DB}
	pa := patientAuth{app: a, staff: n.AuthorizeCLIOr}
	payAPI{svc: svc, hospitals: a.Hospitals, configured: pc.URL != "", insurance: &remote}.routes(mux, pa)
	ins := insuranceAPI{remote: remote, svc: svc, hospitals: a.Hospitals}
	ins.routes(mux, pa)
	return ins.serveResolve()
}

// runPayments runs the payment resolver until ctx ends; done is closed when
// it has returned.
func runPayments(ctx context.Context, svc *payments.Service, done chan<- struct{}) {
	defer close(done)
	svc.Run(ctx)
}

var _ payments.Channel = (*channel)(nil)
var _ payments.Channel = noChannel{}
