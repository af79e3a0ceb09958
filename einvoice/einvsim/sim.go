package einvsim

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"ihos"
	"ihos/einvoice"
	"ihos/internal/simulate"
)

// ServicePrefix is where the platform's services are: POST
// ServicePrefix + service name. URL()+ServicePrefix is the value for
// einvoice.Client.BaseURL.
const ServicePrefix = "/api/medical/"

// Config configures a simulator.
type Config struct {
	HTTPAddr string // default "127.0.0.1:0"
	AppID    string // the one appid accepted; default "IHOSDEMO"
	Key      string // the signing key of AppID; required
	// PublicURL is the address patients reach the check page at, used in
	// pictureNetUrl and the QR code; default the listener's URL.
	PublicURL string
	// Payee is the issuing unit (收款单位) shown on the bill; default "示范医院".
	Payee string
	// Batch codes (票据代码) of outpatient and registration bills; default
	// "11010121" and "11010122". Bill numbers run per batch code from
	// 0000000001; red bills take the next number of their original's batch.
	OutpatientBatch   string
	RegistrationBatch string
	Logger            *slog.Logger     // default: discard
	Now               func() time.Time // default time.Now
}

// Mode is how the simulator behaves, as POST /control/mode sets it.
type Mode = simulate.Mode

// Mode names.
const (
	ModeUp    = simulate.Up    // answers normally
	ModeDown  = simulate.Down  // services answer HTTP 503 (check page and control keep working)
	ModeSlow  = simulate.Slow  // every service answer waits Delay
	ModeError = simulate.Error // every well-formed, well-signed request is refused with Text
)

// Result codes the simulator answers besides S0000. The real platform's
// codes for these cases are not in REFERENCE.md; only ResultNotFound
// (einvoice.ResultNotFound) has a meaning to the client.
const (
	ResultBadRequest   = "E0001" // the envelope or data is not well formed
	ResultBadAppID     = "E0002" // unknown appid
	ResultBadSign      = "E0003" // sign does not verify
	ResultReplay       = "E0004" // noise already used
	ResultBadService   = "E0005" // unknown service
	ResultInvalid      = "E0010" // a business field is wrong
	ResultConflict     = "E0409" // busNo reused for another bill, or bill already written off
	ResultNotFound     = einvoice.ResultNotFound
	ResultFailure      = "E9999" // error mode
	maxRequest         = 1 << 20
	maxNoises          = 100000
	defaultPayee       = "示范医院"
	defaultOutBatch    = "11010121"
	defaultRegBatch    = "11010122"
	defaultAppID       = "IHOSDEMO"
	checkPath          = "/check"
	stateNormal        = einvoice.StateNormal
	stateWrittenOff    = einvoice.StateWrittenOff
	billTypeOutpatient = "医疗门诊收费票据（电子）"
	billTypeReg        = "医疗挂号收费票据（电子）"
)

// Bill is an issued bill as the simulator keeps it (GET /control/bills).
type Bill struct {
	Service   string              `json:"service"`
	BusNo     string              `json:"busNo"`
	BatchCode string              `json:"billBatchCode"`
	No        string              `json:"billNo"`
	Random    string              `json:"random"`
	CreatedAt time.Time           `json:"createdAt"`
	Request   einvoice.Outpatient `json:"request"`
	Red       *Red                `json:"red,omitempty"`

	qrPNG []byte // the QR picture of the check URL
}

// Red is the red bill of a written-off Bill.
type Red struct {
	BatchCode string    `json:"eScarletBillBatchCode"`
	No        string    `json:"eScarletBillNo"`
	Random    string    `json:"eScarletRandom"`
	CreatedAt time.Time `json:"createdAt"`
	Reason    string    `json:"reason"`
	Operator  string    `json:"operator"`

	qrPNG []byte
}

// Sim is a running platform simulator. Everything is in memory: a restart
// forgets every bill and starts the numbers again.
type Sim struct {
	cfg Config
	log *slog.Logger
	url string
	srv *simulate.Server

	mu       sync.Mutex // guards what follows
	mode     Mode
	byBusNo  map[string]*Bill
	byNumber map[string]*Bill // batch code + "/" + number, red bills included
	next     map[string]int64 // last number per batch code
	noises   map[string]bool
	noiseLog []string // noises in arrival order, to forget the oldest
	counts   map[string]int64
}

// Start listens on cfg.HTTPAddr and serves the platform, the check page,
// the bill pictures and the control API; it returns once the listener
// accepts connections.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if cfg.Key == "" {
		return nil, errors.New("einvsim: Config.Key is required")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.AppID == "" {
		cfg.AppID = defaultAppID
	}
	if cfg.Payee == "" {
		cfg.Payee = defaultPayee
	}
	if cfg.OutpatientBatch == "" {
		cfg.OutpatientBatch = defaultOutBatch
	}
	if cfg.RegistrationBatch == "" {
		cfg.RegistrationBatch = defaultRegBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "einvoice-sim")
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("einvsim: listen: %w", err)
	}
	s := &Sim{
		cfg: cfg, log: log, url: "http://" + l.Addr().String(),
		mode: Mode{Name: ModeUp}, byBusNo: map[string]*Bill{}, byNumber: map[string]*Bill{},
		next: map[string]int64{}, noises: map[string]bool{}, counts: map[string]int64{},
	}
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = s.url
	}
	s.cfg.PublicURL = strings.TrimRight(s.cfg.PublicURL, "/")
	s.srv = simulate.Serve(l, s.routes(), s.log)
	s.log.Info("e-invoice platform simulator started", "url", s.url, "appid", cfg.AppID)
	return s, nil
}

// URL is the simulator's base URL ("http://127.0.0.1:port").
func (s *Sim) URL() string { return s.url }

// ServiceURL is URL()+ServicePrefix: the value for einvoice.Client.BaseURL.
func (s *Sim) ServiceURL() string { return s.url + ServicePrefix }

// AppID is the appid the simulator accepts.
func (s *Sim) AppID() string { return s.cfg.AppID }

// Close stops the server.
func (s *Sim) Close() error {
	return s.srv.Close()
}

// Mode returns the current mode.
func (s *Sim) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches the mode.
func (s *Sim) SetMode(m Mode) error {
	m, err := m.Check("财政电子票据平台系统繁忙，请稍后再试（模拟故障）")
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
	s.log.Info("mode changed", "mode", m.Name, "delay", m.Delay)
	return nil
}

// Bills returns the issued bills, oldest first.
func (s *Sim) Bills() []Bill {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Bill, 0, len(s.byBusNo))
	for _, b := range s.byBusNo {
		c := *b
		if b.Red != nil {
			r := *b.Red
			c.Red = &r
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].BatchCode != out[j].BatchCode {
			return out[i].BatchCode < out[j].BatchCode
		}
		return out[i].No < out[j].No
	})
	return out
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ServicePrefix+"{service}", simulate.Service(s.Mode, "财政电子票据平台暂停服务（模拟停机）", s.service))
	mux.HandleFunc("GET "+checkPath, s.checkPage)
	mux.HandleFunc("GET /bills/{code}/{file}", s.billPicture)
	mux.HandleFunc("GET /control", s.controlState)
	mux.HandleFunc("POST /control/mode", simulate.ModeHandler(s.SetMode, s.controlState))
	mux.HandleFunc("GET /control/bills", func(w http.ResponseWriter, r *http.Request) {
		simulate.JSON(w, http.StatusOK, map[string]any{"bills": s.Bills()})
	})
	return mux
}

// refusal is a failed answer: a result code and its text.
type refusal struct {
	result string
	text   string
}

func refuse(result, format string, args ...any) *refusal {
	return &refusal{result, fmt.Sprintf(format, args...)}
}

// service answers one request: always HTTP 200 with a signed envelope
// (unsigned only when the appid is unknown, since there is no key to sign
// with).
func (s *Sim) service(w http.ResponseWriter, r *http.Request) {
	service := r.PathValue("service")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest))
	if err != nil {
		return
	}
	msg, ref := s.handle(service, body)
	rd := einvoice.NewResult(einvoice.ResultOK, msg)
	if ref != nil {
		rd = einvoice.NewResult(ref.result, []byte(ref.text))
	}
	signed := ref == nil || (ref.result != ResultBadAppID && ref.result != ResultBadRequest)
	data, _ := json.Marshal(rd)
	ans := einvoice.Envelope{AppID: s.cfg.AppID, Data: base64.StdEncoding.EncodeToString(data),
		Noise: einvoice.NewNoise(), Version: einvoice.Version}
	if signed {
		ans.Sign = einvoice.Sign(s.cfg.AppID, ans.Data, ans.Noise, s.cfg.Key, ans.Version)
	} else {
		ans.AppID = ""
	}
	key := service
	if ref != nil {
		key += "_" + ref.result
		s.log.Info("refused", "service", service, "result", ref.result, "text", ref.text)
	} else {
		s.log.Debug("answered", "service", service)
	}
	s.mu.Lock()
	s.counts[key]++
	s.mu.Unlock()
	simulate.JSON(w, http.StatusOK, ans)
}

// handle checks the envelope and runs the service: the answer message
// (JSON), or a refusal.
func (s *Sim) handle(service string, body []byte) ([]byte, *refusal) {
	var env einvoice.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, refuse(ResultBadRequest, "请求报文不是合法的 JSON")
	}
	if env.AppID != s.cfg.AppID {
		return nil, refuse(ResultBadAppID, "应用账号 %s 不存在", ihos.Truncate(env.AppID, 40))
	}
	if env.Version != einvoice.Version {
		return nil, refuse(ResultBadRequest, "版本号 version 应为 %s", einvoice.Version)
	}
	if env.Noise == "" || env.Data == "" || env.Sign == "" {
		return nil, refuse(ResultBadRequest, "请求报文缺少 data、noise 或 sign")
	}
	if env.Sign != einvoice.Sign(env.AppID, env.Data, env.Noise, s.cfg.Key, env.Version) {
		return nil, refuse(ResultBadSign, "签名验证失败")
	}
	if !s.useNoise(env.Noise) {
		return nil, refuse(ResultReplay, "请求随机标识 noise 重复，请求被拒绝")
	}
	data, err := env.Decode()
	if err != nil || !json.Valid(data) {
		return nil, refuse(ResultBadRequest, "data 不是 Base64 编码的 JSON")
	}
	if m := s.Mode(); m.Name == ModeError {
		return nil, refuse(ResultFailure, "%s", m.Text)
	}
	var (
		out any
		ref *refusal
	)
	switch service {
	case einvoice.ServiceOutpatient:
		out, ref = s.issue(service, s.cfg.OutpatientBatch, data)
	case einvoice.ServiceRegistration:
		out, ref = s.issue(service, s.cfg.RegistrationBatch, data)
	case einvoice.ServiceWriteOff:
		out, ref = s.writeOff(data)
	case einvoice.ServiceQuery:
		out, ref = s.query(data)
	default:
		return nil, refuse(ResultBadService, "不支持的服务 %s（模拟平台实现门诊、挂号开票，冲红和按业务流水号查询）", ihos.Truncate(service, 40))
	}
	if ref != nil {
		return nil, ref
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, refuse(ResultFailure, "模拟平台内部错误")
	}
	return b, nil
}

// useNoise records a noise, reporting false if it was seen before. The
// oldest are forgotten beyond maxNoises.
func (s *Sim) useNoise(n string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noises[n] {
		return false
	}
	s.noises[n] = true
	s.noiseLog = append(s.noiseLog, n)
	if len(s.noiseLog) > maxNoises {
		delete(s.noises, s.noiseLog[0])
		s.noiseLog = s.noiseLog[1:]
	}
	return true
}

// decodeStrict decodes a request, refusing unknown types and bad amounts.
func decodeStrict(data []byte, v any) *refusal {
	if err := json.Unmarshal(data, v); err != nil {
		return refuse(ResultInvalid, "请求参数格式不正确：%s", ihos.Truncate(err.Error(), 200))
	}
	return nil
}

// fieldsText renders the per-field messages of an ihos.Error.
func fieldsText(err error) string {
	var e *ihos.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return ihos.ErrorMessage(err)
	}
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "：" + e.Fields[k]
	}
	return strings.Join(parts, "；")
}

// issue answers invoiceEBillOutpatient and invEBillRegistration.
func (s *Sim) issue(service, batch string, data []byte) (any, *refusal) {
	var o einvoice.Outpatient
	if ref := decodeStrict(data, &o); ref != nil {
		return nil, ref
	}
	if err := einvoice.CheckOutpatient(o); err != nil {
		return nil, refuse(ResultInvalid, "请求参数不正确：%s", fieldsText(err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.byBusNo[o.BusNo]; ok {
		if b.Service != service || b.Request.TotalAmt != o.TotalAmt || b.Request.Payer != o.Payer {
			return nil, refuse(ResultConflict, "业务流水号 %s 已开具票据 %s %s，与本次请求不一致", ihos.Truncate(o.BusNo, 50), b.BatchCode, b.No)
		}
		return s.answer(b), nil
	}
	now := s.cfg.Now()
	s.next[batch]++
	b := &Bill{Service: service, BusNo: o.BusNo, BatchCode: batch, No: fmt.Sprintf("%010d", s.next[batch]),
		Random: newRandom(), CreatedAt: now.UTC(), Request: o}
	b.qrPNG = qrPNG(s.checkURL(s.cfg.PublicURL, b.BatchCode, b.No, b.Random))
	s.byBusNo[o.BusNo] = b
	s.byNumber[b.BatchCode+"/"+b.No] = b
	s.log.Info("bill issued", "service", service, "billBatchCode", b.BatchCode, "billNo", b.No, "totalAmt", o.TotalAmt.Yuan())
	return s.answer(b), nil
}

// answer is the issue and query answer of b; s.mu is held.
func (s *Sim) answer(b *Bill) einvoice.IssueAnswer {
	a := einvoice.IssueAnswer{
		BillBatchCode: b.BatchCode, BillNo: b.No, Random: b.Random, CreateTime: einvoice.FormatTime(b.CreatedAt),
		BillQRCode:    base64.StdEncoding.EncodeToString(b.qrPNG),
		PictureURL:    s.checkURL(s.url, b.BatchCode, b.No, b.Random),
		PictureNetURL: s.checkURL(s.cfg.PublicURL, b.BatchCode, b.No, b.Random),
		BusNo:         b.BusNo, TotalAmt: b.Request.TotalAmt, State: stateNormal,
	}
	if b.Red != nil {
		a.State = stateWrittenOff
		a.EScarletBillBatchCode, a.EScarletBillNo, a.EScarletRandom = b.Red.BatchCode, b.Red.No, b.Red.Random
		a.EScarletCreateTime = einvoice.FormatTime(b.Red.CreatedAt)
	}
	return a
}

// checkURL is the check page address of a bill.
func (s *Sim) checkURL(base, code, no, random string) string {
	q := url.Values{"code": {code}, "no": {no}, "random": {random}}
	return base + checkPath + "?" + q.Encode()
}

// writeOff answers writeOffEBill: once per bill.
func (s *Sim) writeOff(data []byte) (any, *refusal) {
	var w einvoice.WriteOffReq
	if ref := decodeStrict(data, &w); ref != nil {
		return nil, ref
	}
	var missing []string
	for _, f := range []struct{ v, name string }{{w.BillBatchCode, "billBatchCode"}, {w.BillNo, "billNo"},
		{w.Reason, "reason"}, {w.Operator, "operator"}, {w.PlaceCode, "placeCode"}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, refuse(ResultInvalid, "请求参数不正确：缺少 %s", strings.Join(missing, "、"))
	}
	if t, err := einvoice.ParseTime(w.BusDateTime); err != nil || len(w.BusDateTime) != 17 || t.IsZero() {
		return nil, refuse(ResultInvalid, "请求参数不正确：busDateTime 应为 yyyyMMddHHmmssSSS")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byNumber[w.BillBatchCode+"/"+w.BillNo]
	if !ok || b.BatchCode != w.BillBatchCode || b.No != w.BillNo {
		return nil, refuse(ResultNotFound, "票据代码 %s 票据号码 %s 的电子票据不存在", ihos.Truncate(w.BillBatchCode, 20), ihos.Truncate(w.BillNo, 20))
	}
	if b.Red != nil {
		return nil, refuse(ResultConflict, "该电子票据已冲红（红票号码 %s）", b.Red.No)
	}
	s.next[b.BatchCode]++
	red := &Red{BatchCode: b.BatchCode, No: fmt.Sprintf("%010d", s.next[b.BatchCode]), Random: newRandom(),
		CreatedAt: s.cfg.Now().UTC(), Reason: w.Reason, Operator: w.Operator}
	red.qrPNG = qrPNG(s.checkURL(s.cfg.PublicURL, red.BatchCode, red.No, red.Random))
	b.Red = red
	s.byNumber[red.BatchCode+"/"+red.No] = b
	s.log.Info("bill written off", "billBatchCode", b.BatchCode, "billNo", b.No, "eScarletBillNo", red.No)
	return einvoice.WriteOffAnswer{
		EScarletBillBatchCode: red.BatchCode, EScarletBillNo: red.No, EScarletRandom: red.Random,
		CreateTime:    einvoice.FormatTime(red.CreatedAt),
		BillQRCode:    base64.StdEncoding.EncodeToString(red.qrPNG),
		PictureURL:    s.checkURL(s.url, red.BatchCode, red.No, red.Random),
		PictureNetURL: s.checkURL(s.cfg.PublicURL, red.BatchCode, red.No, red.Random),
	}, nil
}

// query answers getEBillByBusNo.
func (s *Sim) query(data []byte) (any, *refusal) {
	var q einvoice.QueryReq
	if ref := decodeStrict(data, &q); ref != nil {
		return nil, ref
	}
	if strings.TrimSpace(q.BusNo) == "" {
		return nil, refuse(ResultInvalid, "请求参数不正确：缺少 busNo")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byBusNo[q.BusNo]
	if !ok {
		return nil, refuse(ResultNotFound, "未查询到业务流水号 %s 的电子票据", ihos.Truncate(q.BusNo, 50))
	}
	return s.answer(b), nil
}

// newRandom returns a check code (校验码): six lower-case hex digits, the
// form public samples show.
func newRandom() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Sim) controlState(w http.ResponseWriter, r *http.Request) {
	m := s.Mode()
	s.mu.Lock()
	counts := map[string]int64{}
	for k, v := range s.counts {
		counts[k] = v
	}
	bills := len(s.byBusNo)
	s.mu.Unlock()
	simulate.JSON(w, http.StatusOK, map[string]any{
		"mode": m.JSON(), "url": s.url, "service": s.ServiceURL(),
		"appid": s.cfg.AppID, "bills": bills, "counters": counts,
	})
}
