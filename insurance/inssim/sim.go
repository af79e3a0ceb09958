package inssim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"ihos"
	"ihos/insurance"
	"ihos/internal/simulate"
)

// Config configures a simulator.
type Config struct {
	HTTPAddr string        // default "127.0.0.1:0"
	TokenTTL time.Duration // how long an issued ecToken is valid; default DefaultTokenTTL
	// Admdvs is the platform's own area code, the first six characters of
	// every inf_refmsgid; default "110000".
	Admdvs string
	Logger *slog.Logger     // default: discard
	Now    func() time.Time // the clock (tests move it to expire tokens); default time.Now
}

// DefaultTokenTTL is how long an e-voucher token stays valid. The real
// figure is not in REFERENCE.md; a patient shows a freshly refreshed QR code
// and the kiosk calls 1101 within seconds, so minutes are plenty.
const DefaultTokenTTL = 10 * time.Minute

// Mode is how the simulator behaves, as POST /control/mode sets it; in
// error mode Text is the err_msg of every answer.
type Mode = simulate.Mode

// Mode names.
const (
	ModeUp    = simulate.Up    // answers normally
	ModeDown  = simulate.Down  // the service URL answers HTTP 503 (the control API keeps working)
	ModeSlow  = simulate.Slow  // every answer waits Delay
	ModeError = simulate.Error // every transaction answers infcode -1 with Text
	// ModeSettleSlow settles a 2207 at once but answers it only after
	// Delay (default 3 s): the client times out and the result is unknown
	// to it, though the settlement stands. A repeat of the same msgid is
	// answered at once from the first answer.
	ModeSettleSlow = "settle_slow"
	// ModeSplitChange makes every 2207 split the money differently from
	// the 2206 before it, as when the account was spent elsewhere between
	// the two: the account balance is gone when the account is used (or,
	// without the account, the fund ratio is 10 points lower for that
	// settlement).
	ModeSplitChange = "split_change"
)

// Received is one request as GET /control/requests lists it.
type Received struct {
	At      time.Time       `json:"at"`
	Infno   string          `json:"infno"`
	MsgID   string          `json:"msgid"`
	Infcode int             `json:"infcode"`
	ErrMsg  string          `json:"err_msg,omitempty"`
	Header  http.Header     `json:"header,omitempty"` // the x-tif-* gateway headers, when sent
	Body    json.RawMessage `json:"body"`             // the request as it arrived
}

// maxRequest bounds a request body.
const maxRequest = 4 << 20

// maxReceived bounds the request history kept for the control API.
const maxReceived = 500

// Sim is a running platform simulator.
type Sim struct {
	cfg     Config
	log     *slog.Logger
	url     string
	srv     *simulate.Server
	persons []Insured

	mu       sync.Mutex // guards what follows
	mode     Mode
	tokens   map[string]ECToken
	received []Received
	serial   uint64 // inf_refmsgid serial
	counts   map[string]int64
	ledger   // settlement state, settle.go
}

// Start listens on cfg.HTTPAddr and serves the platform (ServicePath) and the
// control API; it returns once the listener accepts connections.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Admdvs == "" {
		cfg.Admdvs = "110000"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "insurance-sim")
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("inssim: listen: %w", err)
	}
	s := &Sim{
		cfg: cfg, log: log, url: "http://" + l.Addr().String(),
		persons: demoInsured(cfg.Now()),
		mode:    Mode{Name: ModeUp}, tokens: map[string]ECToken{}, counts: map[string]int64{},
	}
	s.ledger = newLedger(s.persons)
	s.srv = simulate.Serve(l, s.routes(), s.log)
	s.log.Info("insurance platform simulator started", "url", s.url, "persons", len(s.persons))
	return s, nil
}

// URL is the simulator's base URL ("http://127.0.0.1:port"): the value for
// insurance.Client.BaseURL. The platform itself is at URL()+ServicePath.
func (s *Sim) URL() string { return s.url }

// Close stops the server.
func (s *Sim) Close() error {
	return s.srv.Close()
}

// Persons returns the insured persons, with their account balances as they
// are now.
func (s *Sim) Persons() []Insured {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]Insured(nil), s.persons...)
	for i := range out {
		out[i].BalcFen = s.balance[out[i].PsnNo]
	}
	return out
}

// Person returns the insured person with this ID number, with the account
// balance as it is now.
func (s *Sim) Person(idNumber string) (Insured, bool) {
	for _, p := range s.persons {
		if p.IDNumber == strings.ToUpper(strings.TrimSpace(idNumber)) {
			s.mu.Lock()
			p.BalcFen = s.balance[p.PsnNo]
			s.mu.Unlock()
			return p, true
		}
	}
	return Insured{}, false
}

// Mode returns the current mode.
func (s *Sim) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches the mode.
func (s *Sim) SetMode(m Mode) error {
	if m.Name == ModeSettleSlow && m.Delay <= 0 {
		m.Delay = simulate.DefaultDelay
	}
	m, err := m.Check("医保中心系统繁忙，请稍后再试（模拟故障）", ModeSettleSlow, ModeSplitChange)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
	s.log.Info("mode changed", "mode", m.Name, "delay", m.Delay)
	return nil
}

// IssueECToken issues an e-voucher token for the insured person with this
// ID number, as the national insurance app does when the patient opens the
// QR code; ttl 0 means Config.TokenTTL.
func (s *Sim) IssueECToken(idNumber string, ttl time.Duration) (ECToken, error) {
	p, ok := s.Person(idNumber)
	if !ok {
		return ECToken{}, fmt.Errorf("身份证号 %s 不是模拟平台的参保人员", idNumber)
	}
	if ttl <= 0 {
		ttl = s.cfg.TokenTTL
	}
	tok := newToken(p.InsuplcAdmdvs)
	t := ECToken{Token: tok, IDNumber: p.IDNumber, Name: p.Name, ExpiresAt: s.cfg.Now().Add(ttl).UTC(), QR: tok}
	s.mu.Lock()
	now := s.cfg.Now()
	for k, v := range s.tokens { // forget long-expired tokens
		if now.Sub(v.ExpiresAt) > time.Hour {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = t
	s.mu.Unlock()
	return t, nil
}

// Requests returns the requests received, oldest first (at most the last 500).
func (s *Sim) Requests() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+insurance.ServicePath, simulate.Service(s.Mode, "医保平台暂停服务（模拟停机）", s.service))
	mux.HandleFunc("GET /control", s.controlState)
	mux.HandleFunc("POST /control/mode", simulate.ModeHandler(s.SetMode, s.controlState))
	mux.HandleFunc("POST /control/ectoken", s.controlECToken)
	mux.HandleFunc("GET /control/persons", func(w http.ResponseWriter, r *http.Request) {
		simulate.JSON(w, http.StatusOK, map[string]any{"persons": s.persons})
	})
	mux.HandleFunc("GET /control/requests", func(w http.ResponseWriter, r *http.Request) {
		simulate.JSON(w, http.StatusOK, map[string]any{"requests": s.Requests()})
	})
	mux.HandleFunc("GET /control/settlements", s.controlSettlements)
	return mux
}

func (s *Sim) controlState(w http.ResponseWriter, r *http.Request) {
	m := s.Mode()
	s.mu.Lock()
	counts := map[string]int64{}
	for k, v := range s.counts {
		counts[k] = v
	}
	tokens := len(s.tokens)
	s.mu.Unlock()
	simulate.JSON(w, http.StatusOK, map[string]any{
		"mode": m.JSON(), "url": s.url,
		"service": s.url + insurance.ServicePath, "persons": len(s.persons), "tokens": tokens, "counters": counts,
	})
}

// controlECToken issues a token: {"id_number": "...", "ttl_seconds": 600}
// (ttl_seconds optional) → ECToken.
func (s *Sim) controlECToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDNumber   string `json:"id_number"`
		TTLSeconds int64  `json:"ttl_seconds"`
	}
	if !simulate.ReadJSON(w, r, &in) {
		return
	}
	t, err := s.IssueECToken(in.IDNumber, time.Duration(in.TTLSeconds)*time.Second)
	if err != nil {
		simulate.Message(w, http.StatusNotFound, err.Error())
		return
	}
	simulate.JSON(w, http.StatusOK, t)
}

// envelopeKeys are the request keys REFERENCE.md lists; the simulator
// refuses a request that lacks one, as a strict gateway would.
var envelopeKeys = []string{"infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "recer_sys_code", "dev_no",
	"dev_safe_info", "cainfo", "signtype", "infver", "opter_type", "opter", "opter_name", "inf_time",
	"fixmedins_code", "fixmedins_name", "sign_no", "input"}

// service answers one envelope. Every answer is HTTP 200 with the response
// envelope; refusals are infcode -1 with a Chinese err_msg.
func (s *Sim) service(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest))
	if err != nil {
		return
	}
	var req insurance.Request
	output, errMsg, fresh := s.handle(body, &req)
	if m := s.Mode(); m.Name == ModeSettleSlow && fresh && req.Infno == insurance.InfnoSettle {
		// Settled already; the answer is late, and lost if the client gives up.
		if !simulate.Wait(r, m.Delay) {
			return
		}
	}
	now := s.cfg.Now()
	resp := insurance.Response{
		Infcode: insurance.InfcodeOK, ErrMsg: errMsg,
		RefmsgTime: stamp(now), Output: output,
	}
	if errMsg != "" {
		resp.Infcode, resp.Output = insurance.InfcodeFail, nil
	}
	s.mu.Lock()
	s.serial++
	resp.InfRefMsgID = s.cfg.Admdvs + now.In(ihos.Shanghai).Format("20060102150405") + fmt.Sprintf("%010d", s.serial%1e10)
	rec := Received{At: now.UTC(), Infno: req.Infno, MsgID: req.MsgID, Infcode: int(resp.Infcode), ErrMsg: errMsg}
	if json.Valid(body) {
		rec.Body = json.RawMessage(body)
	}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-tif-") {
			if rec.Header == nil {
				rec.Header = http.Header{}
			}
			rec.Header[k] = v
		}
	}
	s.received = append(s.received, rec)
	if len(s.received) > maxReceived {
		s.received = append([]Received(nil), s.received[len(s.received)-maxReceived:]...)
	}
	key := req.Infno
	if key == "" {
		key = "invalid"
	}
	if errMsg != "" {
		s.counts[key+"_failed"]++
	} else {
		s.counts[key]++
	}
	s.mu.Unlock()
	resp.RespondTime = stamp(s.cfg.Now())
	s.log.Debug("transaction", "infno", req.Infno, "msgid", req.MsgID, "infcode", int(resp.Infcode), "err_msg", errMsg)
	simulate.JSON(w, http.StatusOK, resp)
}

// handle checks the envelope and runs the transaction: its output, or the
// err_msg of a refusal. Business transactions are idempotent on msgid: a
// msgid seen before gets the first answer again (fresh false) without
// acting twice; the same msgid for another infno is refused.
func (s *Sim) handle(body []byte, req *insurance.Request) (out json.RawMessage, errMsg string, fresh bool) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return nil, "报文不是合法的 JSON 对象", false
	}
	if err := json.Unmarshal(body, req); err != nil {
		return nil, "报文字段类型不正确：" + err.Error(), false
	}
	for _, k := range envelopeKeys {
		if _, ok := keys[k]; !ok {
			return nil, "报文缺少字段 " + k, false
		}
	}
	if err := checkEnvelope(req); err != "" {
		return nil, err, false
	}
	m := s.Mode()
	if m.Name == ModeError {
		return nil, m.Text, false
	}
	if req.Infno == insurance.InfnoPersonInfo {
		out, errMsg = s.personInfo(req.Input)
		return out, errMsg, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if oinfno, ok := s.reversed[req.MsgID]; ok && oinfno == req.Infno {
		return nil, "该报文已被冲正，不能再办理，请使用新的报文ID重新发起", false
	}
	if a, ok := s.answers[req.MsgID]; ok {
		if a.infno != req.Infno {
			return nil, "报文ID " + req.MsgID + " 已用于交易 " + a.infno + "，不能重复使用", false
		}
		return a.output, a.errMsg, false
	}
	a, known := s.business(req, m)
	if !known {
		return nil, a.errMsg, false
	}
	a.infno = req.Infno
	s.answers[req.MsgID] = a
	return a.output, a.errMsg, true
}

// checkEnvelope validates the fields REFERENCE.md gives a format for.
func checkEnvelope(r *insurance.Request) string {
	if len(r.Infno) != 4 {
		return "交易编号 infno 应为 4 位"
	}
	if len(r.FixmedinsCode) != 12 {
		return "定点医药机构编号 fixmedins_code 应为 12 位"
	}
	if r.FixmedinsName == "" {
		return "定点医药机构名称 fixmedins_name 不能为空"
	}
	if err := insurance.CheckMsgID(r.MsgID, r.FixmedinsCode); err != nil {
		return "报文ID不正确：" + err.Error()
	}
	if len(r.MdtrtareaAdmvs) != 6 {
		return "就医地医保区划 mdtrtarea_admvs 应为 6 位"
	}
	if r.InsuplcAdmdvs != "" && len(r.InsuplcAdmdvs) != 6 {
		return "参保地医保区划 insuplc_admdvs 应为 6 位"
	}
	if r.Infver != insurance.InfVer {
		return "接口版本号 infver 应为 " + insurance.InfVer
	}
	switch r.OpterType {
	case insurance.OpterClerk, insurance.OpterKiosk, insurance.OpterMobile:
	default:
		return "经办人类别 opter_type 应为 1、2 或 3"
	}
	if r.Opter == "" || r.OpterName == "" {
		return "经办人 opter 和经办人姓名 opter_name 不能为空"
	}
	if _, err := time.ParseInLocation(insurance.InfTimeFormat, r.InfTime, ihos.Shanghai); err != nil {
		return "交易时间 inf_time 应为 yyyy-MM-dd HH:mm:ss"
	}
	return ""
}

// personInfo answers 1101.
func (s *Sim) personInfo(input json.RawMessage) (json.RawMessage, string) {
	var in struct {
		Data *insurance.PersonQuery `json:"data"`
	}
	if err := json.Unmarshal(input, &in); err != nil || in.Data == nil {
		return nil, "输入参数不正确：缺少 data 节点"
	}
	q := in.Data
	no := strings.TrimSpace(q.MdtrtCertNo)
	if no == "" {
		return nil, "就诊凭证编号 mdtrt_cert_no 不能为空"
	}
	var p Insured
	var found bool
	switch q.MdtrtCertType {
	case insurance.CertECToken:
		s.mu.Lock()
		t, ok := s.tokens[no]
		s.mu.Unlock()
		if !ok {
			return nil, "电子凭证令牌无效，请患者在医保APP中重新出示医保电子凭证"
		}
		if !s.cfg.Now().Before(t.ExpiresAt) {
			return nil, "电子凭证令牌已过期，请患者刷新医保电子凭证二维码后重新出示"
		}
		p, found = s.Person(t.IDNumber)
	case insurance.CertIDCard:
		p, found = s.Person(no)
	case insurance.CertSSCard:
		if strings.TrimSpace(q.CardSN) == "" {
			return nil, "就诊凭证类型为社会保障卡时卡识别码 card_sn 不能为空"
		}
		for _, x := range s.persons {
			if x.SSCardNo == no {
				p, found = x, true
				break
			}
		}
	default:
		return nil, "就诊凭证类型 mdtrt_cert_type 不正确，应为 01、02 或 03"
	}
	if !found {
		return nil, "未查询到该人员的参保信息"
	}
	if q.Certno != "" && !strings.EqualFold(strings.TrimSpace(q.Certno), p.IDNumber) {
		return nil, "证件号码与就诊凭证不一致"
	}
	if name := strings.TrimSpace(q.PsnName); name != "" && name != p.Name {
		return nil, "人员姓名与证件号码不一致"
	}
	out, err := json.Marshal(p.person(s.cfg.Now()))
	if err != nil {
		return nil, "模拟平台内部错误"
	}
	return out, ""
}

// stamp formats refmsg_time and respond_time as yyyyMMddHHmmssSSS, Beijing
// time. REFERENCE.md gives no format for them; this is the form public
// sample answers show, and the client treats them as opaque.
func stamp(t time.Time) string {
	t = t.In(ihos.Shanghai)
	return t.Format("20060102150405") + fmt.Sprintf("%03d", t.Nanosecond()/1e6)
}
