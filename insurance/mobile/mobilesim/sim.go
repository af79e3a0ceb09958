package mobilesim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"ihos"
	"ihos/insurance"
	"ihos/insurance/inssim"
	"ihos/insurance/mobile"
	"ihos/internal/simulate"
)

// Config configures a simulator. AppID, AppSecret, OrgCodg and OrgPub are
// required: they are what the centre knows of the one hospital it serves.
type Config struct {
	HTTPAddr  string // default "127.0.0.1:0"
	AppID     string // at least 16 characters
	AppSecret string
	OrgCodg   string
	OrgPub    *ecdsa.PublicKey // the hospital's public key: verifies requests and notify answers
	Key       *sm2.PrivateKey  // the centre's key; nil: a new one
	NotifyURL string           // where 6302 notifies go; empty: none are sent
	// FundRatioPct is the share of the amount the fund pays, 0-100;
	// default DefaultFundRatioPct.
	FundRatioPct int
	// Persons are the insured; nil: the insurance simulator's demo persons
	// (the HIS simulator's demo patients), see DemoPersons.
	Persons []inssim.Insured
	AuthTTL time.Duration // how long a payAuthNo is valid; default 30 min
	Window  time.Duration // how far a request timestamp may be from now; default 5 min
	Logger  *slog.Logger
	Now     func() time.Time
}

// DefaultFundRatioPct is the fund's default share.
const DefaultFundRatioPct = 70

// Mode is how the simulator behaves (POST /control/mode).
type Mode struct {
	Name  string        // ModeUp, ModeDown, ModeSlow or ModeError
	Delay time.Duration // slow: how long every answer waits (default 3 s)
	Text  string        // error: the message of every refusal
	// PendingFor makes 6202 answer ordStas "1" (pending); the order settles
	// that long after (a 6301 query or the timer notices).
	PendingFor time.Duration
	// Fail makes 6202 fail the payment: ordStas "15", nothing paid.
	Fail bool
	// Notify is how 6302 notifies are sent: NotifyNormal, NotifyNone,
	// NotifyDuplicate (twice) or NotifyEarly (before the 6202 answer
	// leaves); NotifyDelay delays each.
	Notify      string
	NotifyDelay time.Duration
}

// Mode names.
const (
	ModeUp    = simulate.Up
	ModeDown  = simulate.Down  // the centre's paths answer HTTP 503
	ModeSlow  = simulate.Slow  // every answer waits Delay
	ModeError = simulate.Error // every well-formed request is refused with Text
)

// service is the part of m every simulator shares.
func (m Mode) service() simulate.Mode {
	return simulate.Mode{Name: m.Name, Delay: m.Delay, Text: m.Text}
}

// Notify modes.
const (
	NotifyNormal    = "normal"
	NotifyNone      = "none"
	NotifyDuplicate = "duplicate"
	NotifyEarly     = "early"
)

// Order statuses the simulator uses (ordStas).
const (
	StasUploaded  = "0"  // 6201 done
	StasPending   = "1"  // 6202 answered, settling
	StasSettled   = "6"  // 结算完成
	StasRefunded  = "7"  // fully refunded
	StasPartRefd  = "10" // partly refunded
	StasCancelled = "12" // 6401
	StasFailed    = "15" // payment failed
)

// Order is an order the centre keeps (GET /control/orders).
type Order struct {
	PayOrdID  string    `json:"pay_ord_id"`
	PayToken  string    `json:"pay_token"`
	MedOrgOrd string    `json:"med_org_ord"`
	PayAuthNo string    `json:"pay_auth_no"`
	IDNumber  string    `json:"id_number"`
	Name      string    `json:"name"`
	PsnNo     string    `json:"psn_no"`
	MdtrtID   string    `json:"mdtrt_id"`
	AcctUsed  bool      `json:"acct_used"`
	OrdStas   string    `json:"ord_stas"`
	TotalFen  int64     `json:"total_fen"`
	FundFen   int64     `json:"fund_fen"`
	AcctFen   int64     `json:"acct_fen"`
	CashFen   int64     `json:"cash_fen"`
	RefdFund  int64     `json:"refd_fund_fen"`
	RefdAcct  int64     `json:"refd_acct_fen"`
	RefdCash  int64     `json:"refd_cash_fen"`
	SettleAt  time.Time `json:"settle_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	SetlID    string    `json:"setl_id,omitempty"`
}

// Auth is a patient's authorisation in the channel, standing in for the
// WeChat/Alipay insurance auth page (POST /control/auth).
type Auth struct {
	PayAuthNo string    `json:"payAuthNo"`
	UldLatlnt string    `json:"uldLatlnt"`
	ECToken   string    `json:"ecToken"`
	IDNumber  string    `json:"id_number"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NotifyRecord is one 6302 notify sent (GET /control/notifies).
type NotifyRecord struct {
	At       time.Time       `json:"at"`
	PayOrdID string          `json:"pay_ord_id"`
	Body     json.RawMessage `json:"body"`    // the envelope as sent
	Code     *int            `json:"code"`    // the hospital's answer code; nil: no valid answer
	Message  string          `json:"message"` // the hospital's answer message
	Err      string          `json:"err,omitempty"`
}

// Sim is a running mobile payment centre simulator.
type Sim struct {
	cfg  Config
	log  *slog.Logger
	url  string
	srv  *simulate.Server
	key  *sm2.PrivateKey
	seal mobile.Sealer
	wg   sync.WaitGroup // notifies in flight

	mu        sync.Mutex // guards what follows
	mode      Mode
	ratio     int
	notifyURL string
	persons   map[string]*inssim.Insured // by ID number; BalcFen is the live balance
	auths     map[string]Auth
	orders    map[string]*Order
	byBizSer  map[string]json.RawMessage // orgBizSer → first 6202 answer data
	refunds   map[string]json.RawMessage // appRefdSn → first 6203 answer data
	notifies  []NotifyRecord
	counts    map[string]int64
	serial    int64
	closed    bool
}

// DemoPersons returns the insurance simulator's insured persons (the HIS
// simulator's 60 demo patients, with balances and insurance types), so the
// same people are insured on both simulators. package inssim exports them
// only through a running simulator, so one is started on loopback for the
// moment it takes to read them.
func DemoPersons() ([]inssim.Insured, error) {
	s, err := inssim.Start(context.Background(), inssim.Config{HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Persons(), nil
}

// Start listens on cfg.HTTPAddr and serves the centre and the control API.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if len(cfg.AppID) < 16 || cfg.AppSecret == "" || cfg.OrgCodg == "" || cfg.OrgPub == nil {
		return nil, errors.New("mobilesim: AppID (≥16 characters), AppSecret, OrgCodg and OrgPub are required")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.FundRatioPct == 0 {
		cfg.FundRatioPct = DefaultFundRatioPct
	}
	if cfg.FundRatioPct < 0 || cfg.FundRatioPct > 100 {
		return nil, fmt.Errorf("mobilesim: fund ratio %d%% is not 0-100", cfg.FundRatioPct)
	}
	if cfg.AuthTTL <= 0 {
		cfg.AuthTTL = 30 * time.Minute
	}
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Key == nil {
		k, err := sm2.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		cfg.Key = k
	}
	if cfg.Persons == nil {
		p, err := DemoPersons()
		if err != nil {
			return nil, fmt.Errorf("mobilesim: demo persons: %w", err)
		}
		cfg.Persons = p
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "mobilepay-sim")
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("mobilesim: listen: %w", err)
	}
	s := &Sim{
		cfg: cfg, log: log, url: "http://" + l.Addr().String(), key: cfg.Key,
		seal: mobile.Sealer{AppID: cfg.AppID, AppSecret: cfg.AppSecret, Key: cfg.Key, Peer: cfg.OrgPub, Now: cfg.Now},
		mode: Mode{Name: ModeUp, Notify: NotifyNormal}, ratio: cfg.FundRatioPct, notifyURL: cfg.NotifyURL,
		persons: map[string]*inssim.Insured{}, auths: map[string]Auth{}, orders: map[string]*Order{},
		byBizSer: map[string]json.RawMessage{}, refunds: map[string]json.RawMessage{}, counts: map[string]int64{},
	}
	for _, p := range cfg.Persons {
		p := p
		s.persons[p.IDNumber] = &p
	}
	s.srv = simulate.Serve(l, s.routes(), s.log)
	s.log.Info("mobile payment centre simulator started", "url", s.url, "persons", len(s.persons))
	return s, nil
}

// URL is the base URL: the value for mobile.Client.BaseURL.
func (s *Sim) URL() string { return s.url }

// PublicKey is the centre's public key: mobile.Client.CentrePub.
func (s *Sim) PublicKey() *ecdsa.PublicKey { return &s.key.PublicKey }

// Close stops the server and waits for notifies in flight.
func (s *Sim) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

// Mode returns the current mode.
func (s *Sim) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches the mode.
func (s *Sim) SetMode(m Mode) error {
	sm, err := m.service().Check("医保移动支付中心系统繁忙，请稍后再试（模拟故障）")
	if err != nil {
		return err
	}
	m.Delay, m.Text = sm.Delay, sm.Text
	switch m.Notify {
	case "":
		m.Notify = NotifyNormal
	case NotifyNormal, NotifyNone, NotifyDuplicate, NotifyEarly:
	default:
		return fmt.Errorf("unknown notify mode %q: want normal, none, duplicate or early", m.Notify)
	}
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
	s.log.Info("mode changed", "mode", m.Name, "pending_for", m.PendingFor, "fail", m.Fail, "notify", m.Notify)
	return nil
}

// SetFundRatio sets the fund's share in percent (0-100).
func (s *Sim) SetFundRatio(pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("统筹支付比例应为 0-100，实际 %d", pct)
	}
	s.mu.Lock()
	s.ratio = pct
	s.mu.Unlock()
	return nil
}

// SetBalance sets a person's personal account balance.
func (s *Sim) SetBalance(idNumber string, fen int64) error {
	if fen < 0 {
		return errors.New("个人账户余额不能为负数")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.persons[strings.ToUpper(idNumber)]
	if !ok {
		return fmt.Errorf("身份证号 %s 不是模拟中心的参保人员", idNumber)
	}
	p.BalcFen = fen
	return nil
}

// Balance returns a person's personal account balance.
func (s *Sim) Balance(idNumber string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.persons[strings.ToUpper(idNumber)]
	if !ok {
		return 0, false
	}
	return p.BalcFen, true
}

// SetNotifyURL sets where 6302 notifies go.
func (s *Sim) SetNotifyURL(u string) {
	s.mu.Lock()
	s.notifyURL = u
	s.mu.Unlock()
}

// Order returns an order.
func (s *Sim) Order(payOrdID string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleDueLocked()
	o, ok := s.orders[payOrdID]
	if !ok {
		return Order{}, false
	}
	return *o, true
}

// Notifies returns the notifies sent, oldest first.
func (s *Sim) Notifies() []NotifyRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]NotifyRecord(nil), s.notifies...)
}

// Authorize stands in for the patient's authorisation in the channel: it
// returns a payAuthNo for the insured person with this ID number, with the
// location (uldLatlnt) and an e-voucher token. The ecToken is the
// simulator's own: the national platform simulator (inssim) does not know
// it.
func (s *Sim) Authorize(idNumber string) (Auth, error) {
	id := strings.ToUpper(strings.TrimSpace(idNumber))
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.persons[id]
	if !ok {
		return Auth{}, fmt.Errorf("身份证号 %s 不是模拟中心的参保人员", idNumber)
	}
	now := s.cfg.Now()
	for k, a := range s.auths {
		if now.Sub(a.ExpiresAt) > time.Hour {
			delete(s.auths, k)
		}
	}
	a := Auth{
		PayAuthNo: "AUTH" + now.In(ihos.Shanghai).Format("20060102150405") + randHex(8),
		UldLatlnt: "116.397128,39.916527",
		ECToken:   p.InsuplcAdmdvs + "ec" + randHex(16),
		IDNumber:  p.IDNumber, Name: p.Name,
		ExpiresAt: now.Add(s.cfg.AuthTTL).UTC(),
	}
	s.auths[a.PayAuthNo] = a
	return a, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	for tx, path := range mobile.Paths {
		mux.HandleFunc("POST "+path, s.service(tx))
	}
	mux.HandleFunc("GET /control", s.controlState)
	mux.HandleFunc("POST /control/mode", s.controlMode)
	mux.HandleFunc("POST /control/auth", s.controlAuth)
	mux.HandleFunc("POST /control/settings", s.controlSettings)
	mux.HandleFunc("GET /control/persons", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		out := make([]inssim.Insured, 0, len(s.persons))
		for _, p := range s.cfg.Persons {
			out = append(out, *s.persons[p.IDNumber])
		}
		s.mu.Unlock()
		simulate.JSON(w, http.StatusOK, map[string]any{"persons": out})
	})
	mux.HandleFunc("GET /control/orders", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.settleDueLocked()
		out := make([]Order, 0, len(s.orders))
		for _, o := range s.orders {
			out = append(out, *o)
		}
		s.mu.Unlock()
		simulate.JSON(w, http.StatusOK, map[string]any{"orders": out})
	})
	mux.HandleFunc("GET /control/notifies", func(w http.ResponseWriter, r *http.Request) {
		simulate.JSON(w, http.StatusOK, map[string]any{"notifies": s.Notifies()})
	})
	return mux
}

// modeJSON is a Mode as the control API reads and shows it: the shared
// fields, then the centre's own.
type modeJSON struct {
	simulate.ModeJSON
	PendingMS     int64  `json:"pending_ms"`
	Fail          bool   `json:"fail"`
	Notify        string `json:"notify"`
	NotifyDelayMS int64  `json:"notify_delay_ms"`
}

func (s *Sim) controlState(w http.ResponseWriter, r *http.Request) {
	m := s.Mode()
	s.mu.Lock()
	counts := map[string]int64{}
	for k, v := range s.counts {
		counts[k] = v
	}
	state := map[string]any{
		"mode": modeJSON{m.service().JSON(), m.PendingFor.Milliseconds(), m.Fail, m.Notify, m.NotifyDelay.Milliseconds()},
		"url":  s.url, "paths": mobile.Paths, "fund_ratio_pct": s.ratio, "notify_url": s.notifyURL,
		"persons": len(s.persons), "orders": len(s.orders), "counters": counts,
	}
	s.mu.Unlock()
	simulate.JSON(w, http.StatusOK, state)
}

func (s *Sim) controlMode(w http.ResponseWriter, r *http.Request) {
	var mj modeJSON
	if !simulate.ReadJSON(w, r, &mj) {
		return
	}
	sm := mj.Mode()
	m := Mode{Name: sm.Name, Delay: sm.Delay, Text: sm.Text,
		PendingFor: time.Duration(mj.PendingMS) * time.Millisecond, Fail: mj.Fail,
		Notify: mj.Notify, NotifyDelay: time.Duration(mj.NotifyDelayMS) * time.Millisecond}
	if err := s.SetMode(m); err != nil {
		simulate.Message(w, http.StatusBadRequest, err.Error())
		return
	}
	s.controlState(w, r)
}

// controlAuth: {"id_number"} → Auth.
func (s *Sim) controlAuth(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDNumber string `json:"id_number"`
	}
	if !simulate.ReadJSON(w, r, &in) {
		return
	}
	a, err := s.Authorize(in.IDNumber)
	if err != nil {
		simulate.Message(w, http.StatusNotFound, err.Error())
		return
	}
	simulate.JSON(w, http.StatusOK, a)
}

// controlSettings: {"fund_ratio_pct": 60, "balances": {"<id>": fen},
// "notify_url": "..."}, every key optional.
func (s *Sim) controlSettings(w http.ResponseWriter, r *http.Request) {
	var in struct {
		FundRatioPct *int             `json:"fund_ratio_pct"`
		Balances     map[string]int64 `json:"balances"`
		NotifyURL    *string          `json:"notify_url"`
	}
	if !simulate.ReadJSON(w, r, &in) {
		return
	}
	if in.FundRatioPct != nil {
		if err := s.SetFundRatio(*in.FundRatioPct); err != nil {
			simulate.Message(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	for id, fen := range in.Balances {
		if err := s.SetBalance(id, fen); err != nil {
			simulate.Message(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if in.NotifyURL != nil {
		s.SetNotifyURL(*in.NotifyURL)
	}
	s.controlState(w, r)
}

// refusal is a transaction's refusal: code -1 with a Chinese message.
type refusal string

// service answers one transaction: the envelope is checked (appId, SM4,
// SM2 signature by the hospital, timestamp within Window), the transaction
// runs, and the answer is an envelope signed by the centre. Every answer is
// HTTP 200 except in down mode.
func (s *Sim) service(tx string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			return
		}
		m := s.Mode()
		if !simulate.Hold(w, r, m.service(), "医保移动支付中心暂停服务（模拟停机）") {
			return
		}
		data, early, ref := s.handle(tx, body, m)
		if early != "" {
			s.sendNotify(early, m, true)
		}
		var env mobile.Envelope
		if ref != "" {
			env, err = s.seal.SealAnswer(-1, string(ref), nil)
		} else {
			env, err = s.seal.SealAnswer(0, "成功", data)
		}
		s.mu.Lock()
		if ref != "" {
			s.counts[tx+"_refused"]++
		} else {
			s.counts[tx]++
		}
		s.mu.Unlock()
		if err != nil {
			simulate.Message(w, http.StatusInternalServerError, "模拟中心签名失败")
			return
		}
		s.log.Debug("transaction", "tx", tx, "refused", string(ref))
		simulate.JSON(w, http.StatusOK, env)
	}
}

// handle checks the envelope and runs tx. early is an order whose notify
// must go out before the answer (NotifyEarly).
func (s *Sim) handle(tx string, body []byte, m Mode) (data any, early string, ref refusal) {
	var env mobile.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, "", "报文不是合法的 JSON 信封"
	}
	plain, err := s.seal.Open(env)
	if err != nil {
		return nil, "", refusal("验签或解密失败：" + ihos.ErrorMessage(err))
	}
	if env.Version != mobile.Version {
		return nil, "", refusal("接口版本号 version 应为 " + mobile.Version)
	}
	if d := s.cfg.Now().Sub(env.Time()); d > s.cfg.Window || d < -s.cfg.Window {
		return nil, "", "报文时间戳超出允许范围"
	}
	if m.Name == ModeError {
		return nil, "", refusal(m.Text)
	}
	dec := func(v any) refusal {
		if err := json.Unmarshal(plain, v); err != nil {
			return refusal("业务参数格式不正确：" + err.Error())
		}
		return ""
	}
	switch tx {
	case mobile.Tx6201:
		var in mobile.FeeUpload
		if ref := dec(&in); ref != "" {
			return nil, "", ref
		}
		d, ref := s.upload(in)
		return d, "", ref
	case mobile.Tx6202:
		var in mobile.OrderRequest
		if ref := dec(&in); ref != "" {
			return nil, "", ref
		}
		return s.order(in, m)
	case mobile.Tx6301:
		var in mobile.QueryRequest
		if ref := dec(&in); ref != "" {
			return nil, "", ref
		}
		d, ref := s.query(in)
		return d, "", ref
	case mobile.Tx6203:
		var in mobile.RefundRequest
		if ref := dec(&in); ref != "" {
			return nil, "", ref
		}
		d, ref := s.refund(in)
		return d, "", ref
	case mobile.Tx6401:
		var in mobile.CancelRequest
		if ref := dec(&in); ref != "" {
			return nil, "", ref
		}
		d, ref := s.cancel(in)
		return d, "", ref
	}
	return nil, "", "不支持的交易"
}

// upload answers 6201.
func (s *Sim) upload(in mobile.FeeUpload) (any, refusal) {
	if in.OrgCodg != s.cfg.OrgCodg {
		return nil, "机构编码 orgCodg 不符"
	}
	if strings.TrimSpace(in.MedOrgOrd) == "" {
		return nil, "医院订单号 medOrgOrd 不能为空"
	}
	var sum insurance.Yuan
	for _, d := range in.FeeDetailList {
		sum += d.DetItemFeeSumamt
	}
	if in.MedfeeSumamt <= 0 || len(in.FeeDetailList) == 0 || sum != in.MedfeeSumamt {
		return nil, "费用明细合计与医疗费总额 medfeeSumamt 不一致"
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.auths[in.PayAuthNo]
	if !ok {
		return nil, "支付授权码 payAuthNo 无效，请患者重新授权"
	}
	if !now.Before(a.ExpiresAt) {
		return nil, "支付授权码 payAuthNo 已过期，请患者重新授权"
	}
	p := s.persons[a.IDNumber]
	if in.IDNo != "" && !strings.EqualFold(in.IDNo, p.IDNumber) {
		return nil, "证件号码与授权人员不一致"
	}
	if in.UserName != "" && in.UserName != p.Name {
		return nil, "姓名与授权人员不一致"
	}
	if p.PsnInsuStas != insurance.InsuStasNormal {
		return nil, "该人员参保状态异常（暂停参保），不能使用医保移动支付"
	}
	for _, o := range s.orders {
		if o.MedOrgOrd == in.MedOrgOrd && o.OrdStas != StasCancelled && o.OrdStas != StasFailed {
			return nil, "医院订单号 medOrgOrd 已上传，请勿重复上传"
		}
	}
	s.serial++
	o := &Order{
		PayOrdID:  fmt.Sprintf("ORD%s%06d", now.In(ihos.Shanghai).Format("20060102150405"), s.serial%1e6),
		PayToken:  randHex(16),
		MedOrgOrd: in.MedOrgOrd, PayAuthNo: in.PayAuthNo, IDNumber: p.IDNumber, Name: p.Name, PsnNo: p.PsnNo,
		MdtrtID: in.MdtrtID, AcctUsed: in.AcctUsedFlag == "1", OrdStas: StasUploaded,
		TotalFen: int64(in.MedfeeSumamt), CreatedAt: now.UTC(),
	}
	s.orders[o.PayOrdID] = o
	// The pre-settlement the patient is shown: the split 6202 would make
	// now (the balance is not reserved until 6202).
	y := func(f int64) insurance.Yuan { return insurance.Yuan(f) }
	fund := o.TotalFen * int64(s.ratio) / 100
	var acct int64
	if o.AcctUsed {
		acct = min(p.BalcFen, o.TotalFen-fund)
	}
	cash := o.TotalFen - fund - acct
	pre := &mobile.PreSetl{MdtrtID: o.MdtrtID, PsnNo: o.PsnNo, MedfeeSumamt: y(o.TotalFen), FundPaySumamt: y(fund), HifpPay: y(fund),
		PsnPartAmt: y(acct + cash), AcctPay: y(acct), PsnCashPay: y(cash), Balc: y(p.BalcFen - acct),
		ClrOptins: p.InsuplcAdmdvs, ClrWay: "1", ClrType: "11"}
	return mobile.UploadResult{PayOrdID: o.PayOrdID, PayToken: o.PayToken, ExtData: mobile.OrderExt{PreSetl: pre}}, ""
}

// order answers 6202.
func (s *Sim) order(in mobile.OrderRequest, m Mode) (any, string, refusal) {
	if in.OrgCodg != s.cfg.OrgCodg {
		return nil, "", "机构编码 orgCodg 不符"
	}
	if in.OrgBizSer == "" {
		return nil, "", "业务流水号 orgBizSer 不能为空"
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if first, ok := s.byBizSer[in.OrgBizSer]; ok {
		return first, "", "" // idempotent: the first answer again
	}
	o, ok := s.orders[in.PayOrdID]
	if !ok || o.PayToken != in.PayToken {
		return nil, "", "支付订单不存在或支付令牌不符"
	}
	if o.PayAuthNo != in.PayAuthNo {
		return nil, "", "支付授权码 payAuthNo 与上传费用时不一致"
	}
	if o.OrdStas != StasUploaded {
		return nil, "", refusal("订单状态不允许支付（ordStas " + o.OrdStas + "）")
	}
	if in.AcctUsedFlag != "" {
		o.AcctUsed = in.AcctUsedFlag == "1"
	}
	early := ""
	if m.Fail {
		o.OrdStas = StasFailed
	} else {
		p := s.persons[o.IDNumber]
		o.FundFen = o.TotalFen * int64(s.ratio) / 100
		if o.AcctUsed {
			o.AcctFen = min(p.BalcFen, o.TotalFen-o.FundFen)
		}
		o.CashFen = o.TotalFen - o.FundFen - o.AcctFen
		p.BalcFen -= o.AcctFen // reserved now, so a second order cannot spend it
		s.serial++
		o.SetlID = fmt.Sprintf("SETL%s%06d", now.In(ihos.Shanghai).Format("20060102150405"), s.serial%1e6)
		if m.PendingFor > 0 {
			o.OrdStas = StasPending
			o.SettleAt = now.Add(m.PendingFor)
			time.AfterFunc(m.PendingFor, func() {
				s.mu.Lock()
				s.settleDueLocked()
				s.mu.Unlock()
			})
		} else {
			o.OrdStas = StasSettled
			if m.Notify == NotifyEarly {
				early = o.PayOrdID
			} else {
				s.scheduleNotifyLocked(o.PayOrdID, m)
			}
		}
	}
	data, _ := json.Marshal(s.resultLocked(o))
	s.byBizSer[in.OrgBizSer] = data
	return json.RawMessage(data), early, ""
}

// settleDueLocked settles pending orders whose time has come and schedules
// their notifies.
func (s *Sim) settleDueLocked() {
	now := s.cfg.Now()
	for _, o := range s.orders {
		if o.OrdStas == StasPending && !now.Before(o.SettleAt) {
			o.OrdStas = StasSettled
			s.scheduleNotifyLocked(o.PayOrdID, s.mode)
		}
	}
}

func (s *Sim) resultLocked(o *Order) mobile.OrderResult {
	y := func(f int64) insurance.Yuan { return insurance.Yuan(f) }
	r := mobile.OrderResult{PayOrdID: o.PayOrdID, OrdStas: o.OrdStas}
	if o.OrdStas == StasFailed || o.OrdStas == StasUploaded || o.OrdStas == StasCancelled {
		return r // nothing paid
	}
	r.FeeSumamt, r.FundPay, r.PsnAcctPay, r.OwnPayAmt = y(o.TotalFen), y(o.FundFen), y(o.AcctFen), y(o.CashFen)
	p := s.persons[o.IDNumber]
	r.ExtData.PreSetl = &mobile.PreSetl{
		SetlID: o.SetlID, MdtrtID: o.MdtrtID, PsnNo: o.PsnNo, MedfeeSumamt: y(o.TotalFen),
		FundPaySumamt: y(o.FundFen), HifpPay: y(o.FundFen), PsnPartAmt: y(o.AcctFen + o.CashFen),
		AcctPay: y(o.AcctFen), PsnCashPay: y(o.CashFen), Balc: y(p.BalcFen),
		ClrOptins: p.InsuplcAdmdvs, ClrWay: "1", ClrType: "11",
	}
	return r
}

// query answers 6301.
func (s *Sim) query(in mobile.QueryRequest) (any, refusal) {
	if in.OrgCodg != s.cfg.OrgCodg {
		return nil, "机构编码 orgCodg 不符"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleDueLocked()
	o, ok := s.orders[in.PayOrdID]
	if !ok || in.PayToken != "" && o.PayToken != in.PayToken {
		return nil, "支付订单不存在"
	}
	return s.resultLocked(o), ""
}

// refund answers 6203.
func (s *Sim) refund(in mobile.RefundRequest) (any, refusal) {
	if in.AppRefdSn == "" {
		return nil, "退款流水号 appRefdSn 不能为空"
	}
	if _, err := time.ParseInLocation("20060102150405", in.AppRefdTime, ihos.Shanghai); err != nil {
		return nil, "退款时间 appRefdTime 应为 yyyyMMddHHmmss"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if first, ok := s.refunds[in.AppRefdSn]; ok {
		return first, ""
	}
	s.settleDueLocked()
	o, ok := s.orders[in.PayOrdID]
	if !ok {
		return nil, "支付订单不存在"
	}
	if o.OrdStas != StasSettled && o.OrdStas != StasPartRefd {
		return nil, refusal("订单未结算或已全额退款，不能退款（ordStas " + o.OrdStas + "）")
	}
	fund, acct, cash := int64(in.FundRefdAmt), int64(in.PsnAcctRefdAmt), int64(in.CashRefdAmt)
	if fund < 0 || acct < 0 || cash < 0 || fund+acct+cash != int64(in.TotlRefdAmt) || in.TotlRefdAmt <= 0 {
		return nil, "退款金额不一致：总额应等于统筹、个人账户与现金退款之和"
	}
	switch in.RefdType {
	case mobile.RefdAll:
	case mobile.RefdHI:
		if cash != 0 {
			return nil, "退款类型 HI 只退医保部分，现金退款应为 0"
		}
	case mobile.RefdCash:
		if fund != 0 || acct != 0 {
			return nil, "退款类型 CASH 只退现金部分"
		}
	default:
		return nil, "退款类型 refdType 应为 ALL、HI 或 CASH"
	}
	if fund > o.FundFen-o.RefdFund || acct > o.AcctFen-o.RefdAcct || cash > o.CashFen-o.RefdCash {
		return nil, "退款金额超过可退金额"
	}
	o.RefdFund += fund
	o.RefdAcct += acct
	o.RefdCash += cash
	s.persons[o.IDNumber].BalcFen += acct
	o.OrdStas = StasPartRefd
	if o.RefdFund == o.FundFen && o.RefdAcct == o.AcctFen && o.RefdCash == o.CashFen {
		o.OrdStas = StasRefunded
	}
	out := mobile.RefundResult{PayOrdID: o.PayOrdID, AppRefdSn: in.AppRefdSn, RefdStas: mobile.RefdStasOK, OrdStas: o.OrdStas,
		TotlRefdAmt: in.TotlRefdAmt, PsnAcctRefdAmt: in.PsnAcctRefdAmt, FundRefdAmt: in.FundRefdAmt, CashRefdAmt: in.CashRefdAmt}
	data, _ := json.Marshal(out)
	s.refunds[in.AppRefdSn] = data
	return json.RawMessage(data), ""
}

// cancel answers 6401.
func (s *Sim) cancel(in mobile.CancelRequest) (any, refusal) {
	if in.OrgCodg != s.cfg.OrgCodg {
		return nil, "机构编码 orgCodg 不符"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleDueLocked()
	o, ok := s.orders[in.PayOrdID]
	if !ok || o.PayToken != in.PayToken {
		return nil, "支付订单不存在或支付令牌不符"
	}
	if in.MedOrgOrd != "" && in.MedOrgOrd != o.MedOrgOrd {
		return nil, "医院订单号 medOrgOrd 与订单不符"
	}
	switch o.OrdStas {
	case StasUploaded, StasFailed, StasCancelled:
		o.OrdStas = StasCancelled
	case StasPending:
		return nil, "订单正在结算中，不能撤销，请稍后查询结果"
	default:
		return nil, "订单已结算，不能撤销上传，请办理退款（6203）"
	}
	return mobile.CancelResult{PayOrdID: o.PayOrdID, OrdStas: o.OrdStas}, ""
}

// scheduleNotifyLocked sends an order's 6302 notify(s) in the background as
// the mode says.
func (s *Sim) scheduleNotifyLocked(payOrdID string, m Mode) {
	if m.Notify == NotifyNone || s.notifyURL == "" || s.closed {
		return
	}
	n := 1
	if m.Notify == NotifyDuplicate {
		n = 2
	}
	for range n {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if m.NotifyDelay > 0 {
				time.Sleep(m.NotifyDelay)
			}
			s.sendNotify(payOrdID, m, false)
		}()
	}
}

// SendNotify sends an order's 6302 notify now, whatever the mode (for
// tests and the demo: a notify repeated by the centre).
func (s *Sim) SendNotify(payOrdID string) error {
	s.mu.Lock()
	_, ok := s.orders[payOrdID]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("订单 %s 不存在", payOrdID)
	}
	s.sendNotify(payOrdID, Mode{}, false)
	return nil
}

// sendNotify posts one 6302 notify and records the hospital's answer.
// early (NotifyEarly) also honours NotifyDelay before the answer.
func (s *Sim) sendNotify(payOrdID string, m Mode, early bool) {
	if early && m.NotifyDelay > 0 {
		time.Sleep(m.NotifyDelay)
	}
	s.mu.Lock()
	o, ok := s.orders[payOrdID]
	url := s.notifyURL
	var n mobile.Notify
	if ok {
		n = mobile.Notify{PayOrdID: o.PayOrdID, CallType: mobile.CallTypeSettle, MedOrgOrd: o.MedOrgOrd,
			TraceTime: s.cfg.Now().In(ihos.Shanghai).Format("20060102150405"),
			FeeSumamt: insurance.Yuan(o.TotalFen), OwnPayAmt: insurance.Yuan(o.CashFen),
			PsnAcctPay: insurance.Yuan(o.AcctFen), FundPay: insurance.Yuan(o.FundFen),
			SetlType: "ALL", RevsToken: o.SetlID}
	}
	s.mu.Unlock()
	if !ok || url == "" {
		return
	}
	rec := NotifyRecord{At: s.cfg.Now().UTC(), PayOrdID: payOrdID}
	defer func() {
		s.mu.Lock()
		s.notifies = append(s.notifies, rec)
		if len(s.notifies) > 500 {
			s.notifies = append([]NotifyRecord(nil), s.notifies[len(s.notifies)-500:]...)
		}
		s.counts["6302_sent"]++
		s.mu.Unlock()
	}()
	env, err := s.seal.Seal(n)
	if err != nil {
		rec.Err = err.Error()
		return
	}
	body, _ := json.Marshal(env)
	rec.Body = body
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rec.Err = err.Error()
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ans mobile.Envelope
	if err := json.Unmarshal(raw, &ans); err != nil {
		rec.Err = fmt.Sprintf("HTTP %d, answer is not the envelope", resp.StatusCode)
		return
	}
	if _, err := s.seal.Open(ans); err != nil {
		rec.Err = "answer refused: " + err.Error()
		return
	}
	rec.Code, rec.Message = ans.Code, ans.Message
	s.log.Info("6302 notify sent", "pay_ord_id", payOrdID, "code", ans.Code, "message", ans.Message)
}
