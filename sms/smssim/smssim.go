// Package smssim simulates the SMS platform package sms talks to (the
// Dysmsapi SendSms wire format described there) over a real HTTP socket. It
// checks the signature, the access key, the sign name and the template as
// the platform does, keeps every message it "delivers", logs verification
// codes in demo mode (so a person can log in with them), and shows the
// messages on its control API for tests:
//
//	GET  /control                   mode and message count
//	POST /control/mode              {"mode": "up"|"down"|"slow"|"error", "delay_ms", "text"}
//	GET  /control/messages?phone=   the messages sent (to phone), newest last
package smssim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"ihos/internal/simulate"
	"ihos/sms"
)

// Config configures a simulator.
type Config struct {
	HTTPAddr        string // default 127.0.0.1:0
	AccessKeyID     string
	AccessKeySecret string
	SignName        string // the approved sign name; "" accepts any
	TemplateCode    string // the approved template; "" accepts any
	// Template is the approved template's text; ${code} is replaced.
	Template string
	// MinuteLimit is how many messages one number may receive a minute
	// before isv.BUSINESS_LIMIT_CONTROL (the platform's own limit); 0: no limit.
	MinuteLimit int
	// Demo logs every verification code at info level.
	Demo   bool
	Logger *slog.Logger
}

// Message is one delivered text.
type Message struct {
	Phone        string    `json:"phone"`
	SignName     string    `json:"sign_name"`
	TemplateCode string    `json:"template_code"`
	Code         string    `json:"code"`
	Text         string    `json:"text"`
	BizID        string    `json:"biz_id"`
	At           time.Time `json:"at"`
}

// Sim is a running simulator.
type Sim struct {
	cfg  Config
	url  string
	srv  *simulate.Server
	mu   sync.Mutex
	mode simulate.Switch
	msgs []Message
	seen map[string]time.Time // SignatureNonce → when
}

// Start listens and serves until Close.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.Template == "" {
		cfg.Template = "您的验证码为：${code}，5分钟内有效，请勿泄露给他人。"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, url: "http://" + l.Addr().String(), seen: map[string]time.Time{}}
	s.mode.ErrorText = "短信发送失败"
	s.mode.Set(simulate.Mode{Name: simulate.Up})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", simulate.Service(s.mode.Get, "短信平台维护中", s.send))
	mux.HandleFunc("GET /control", s.state)
	mux.HandleFunc("POST /control/mode", simulate.ModeHandler(s.SetMode, s.state))
	mux.HandleFunc("GET /control/messages", func(w http.ResponseWriter, r *http.Request) {
		simulate.JSON(w, http.StatusOK, map[string]any{"messages": s.Messages(r.URL.Query().Get("phone"))})
	})
	s.srv = simulate.Serve(l, mux, cfg.Logger)
	return s, nil
}

// URL is the service endpoint (sms.Client.URL), also the base of /control.
func (s *Sim) URL() string { return s.url + "/" }

// Close stops the simulator.
func (s *Sim) Close() error { return s.srv.Close() }

// SetMode sets how the service behaves.
func (s *Sim) SetMode(m simulate.Mode) error { return s.mode.Set(m) }

// Messages returns the messages sent to phone ("" for all), oldest first.
func (s *Sim) Messages(phone string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Message{}
	for _, m := range s.msgs {
		if phone == "" || m.Phone == phone {
			out = append(out, m)
		}
	}
	return out
}

// LastCode returns the last verification code sent to phone, "" if none.
func (s *Sim) LastCode(phone string) string {
	m := s.Messages(phone)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1].Code
}

func (s *Sim) state(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n, m := len(s.msgs), s.mode.Get()
	s.mu.Unlock()
	simulate.JSON(w, http.StatusOK, map[string]any{"mode": m.JSON(), "messages": n})
}

var mobile = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

func (s *Sim) send(w http.ResponseWriter, r *http.Request) {
	reqID := newID()
	answer := func(status int, code, msg string) {
		simulate.JSON(w, status, sms.Answer{Code: code, Message: msg, RequestID: reqID})
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		return
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		answer(http.StatusBadRequest, "InvalidParameter", "The request body is not form-encoded.")
		return
	}
	if v.Get("Action") != sms.Action || v.Get("Version") != sms.Version {
		answer(http.StatusBadRequest, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
		return
	}
	if v.Get("AccessKeyId") != s.cfg.AccessKeyID {
		answer(http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
		return
	}
	if v.Get("SignatureMethod") != sms.SigMethod || v.Get("SignatureVersion") != sms.SigVer ||
		subtle.ConstantTimeCompare([]byte(v.Get("Signature")), []byte(sms.Sign(s.cfg.AccessKeySecret, r.Method, v))) != 1 {
		answer(http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
		return
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", v.Get("Timestamp"))
	if now := time.Now(); err != nil || ts.Before(now.Add(-sms.MaxSkew)) || ts.After(now.Add(sms.MaxSkew)) {
		answer(http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
		return
	}
	nonce := v.Get("SignatureNonce")
	s.mu.Lock()
	_, used := s.seen[nonce]
	if !used {
		s.seen[nonce] = time.Now()
		for k, t := range s.seen {
			if time.Since(t) > 2*sms.MaxSkew {
				delete(s.seen, k)
			}
		}
	}
	m := s.mode.Get()
	s.mu.Unlock()
	if nonce == "" || used {
		answer(http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already.")
		return
	}
	if m.Name == simulate.Error {
		answer(http.StatusOK, "isp.SYSTEM_ERROR", m.Text)
		return
	}
	phone := v.Get("PhoneNumbers")
	if !mobile.MatchString(phone) {
		answer(http.StatusOK, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
		return
	}
	if s.cfg.SignName != "" && v.Get("SignName") != s.cfg.SignName {
		answer(http.StatusOK, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
		return
	}
	if s.cfg.TemplateCode != "" && v.Get("TemplateCode") != s.cfg.TemplateCode {
		answer(http.StatusOK, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
		return
	}
	var param map[string]string
	if err := json.Unmarshal([]byte(v.Get("TemplateParam")), &param); err != nil || param["code"] == "" {
		answer(http.StatusOK, "isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
		return
	}
	msg := Message{Phone: phone, SignName: v.Get("SignName"), TemplateCode: v.Get("TemplateCode"), Code: param["code"],
		Text: "【" + v.Get("SignName") + "】" + strings.ReplaceAll(s.cfg.Template, "${code}", param["code"]), BizID: newID(), At: time.Now()}
	s.mu.Lock()
	if s.cfg.MinuteLimit > 0 {
		n := 0
		for _, old := range s.msgs {
			if old.Phone == phone && msg.At.Sub(old.At) < time.Minute {
				n++
			}
		}
		if n >= s.cfg.MinuteLimit {
			s.mu.Unlock()
			answer(http.StatusOK, "isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
			return
		}
	}
	s.msgs = append(s.msgs, msg)
	s.mu.Unlock()
	if s.cfg.Demo {
		s.cfg.Logger.Info("demo SMS verification code", "phone", phone, "code", msg.Code, "text", msg.Text)
	}
	simulate.JSON(w, http.StatusOK, sms.Answer{Code: "OK", Message: "OK", BizID: msg.BizID, RequestID: reqID})
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
