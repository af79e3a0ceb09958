package paysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ihos/internal/simulate"
	"ihos/paychannel"
)

// answer is what an API handler returns: the status and the value to
// encode (nil: no body, for 204).
type answer struct {
	status int
	body   any
}

func apiError(status int, code, msg string) answer {
	return answer{status, paychannel.ErrorBody{Code: code, Message: msg}}
}

// apiHandler handles one authenticated merchant API call.
type apiHandler func(r *http.Request, m Merchant, body []byte) answer

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+paychannel.PathJSAPI, s.api("create", func(r *http.Request, m Merchant, b []byte) answer {
		return s.create(m, b, paychannel.TradeTypeJSAPI)
	}))
	mux.Handle("POST "+paychannel.PathNative, s.api("create", func(r *http.Request, m Merchant, b []byte) answer {
		return s.create(m, b, paychannel.TradeTypeNative)
	}))
	mux.Handle("GET "+paychannel.PathQueryOutTradeNo+"{no}", s.api("query", s.query))
	mux.Handle("POST "+paychannel.PathQueryOutTradeNo+"{no}"+paychannel.PathCloseSuffix, s.api("close", s.closeOrder))
	mux.Handle("POST "+paychannel.PathRefunds, s.api("refund", s.refund))
	mux.Handle("GET "+paychannel.PathRefunds+"/{no}", s.api("refund_query", s.queryRefund))
	mux.Handle("GET "+paychannel.PathTradeBill, s.api("bill", s.tradeBill))
	mux.HandleFunc("GET "+paychannel.PathBillDownload, s.billDownload)
	s.controlRoutes(mux)
	return mux
}

// authenticate checks the Authorization header as the channel does:
// a known merchant, its certificate serial, a timestamp within five
// minutes, and the signature over method, path, timestamp, nonce and body.
func (s *Sim) authenticate(r *http.Request, body []byte) (Merchant, string) {
	a, err := paychannel.ParseAuth(r.Header.Get("Authorization"))
	if err != nil {
		return Merchant{}, "Authorization 头格式不正确：" + err.Error()
	}
	s.mu.Lock()
	m, ok := s.merchants[a.MchID]
	s.mu.Unlock()
	if !ok {
		return Merchant{}, "商户号 " + a.MchID + " 未开通"
	}
	if a.Scheme != m.scheme() {
		return Merchant{}, "认证类型 " + a.Scheme + " 与商户证书的算法不符，应为 " + m.scheme()
	}
	if a.SerialNo != m.SerialNo {
		return Merchant{}, "商户证书序列号 " + a.SerialNo + " 不正确"
	}
	if d := s.cfg.Now().Sub(time.Unix(a.Timestamp, 0)); d > paychannel.MaxClockSkew || d < -paychannel.MaxClockSkew {
		return Merchant{}, "请求时间戳与当前时间相差过大"
	}
	msg := paychannel.RequestMessage(r.Method, r.URL.RequestURI(), a.Timestamp, a.Nonce, body)
	if err := paychannel.Verify(m.PublicKey, msg, a.Signature); err != nil {
		return Merchant{}, "签名错误，请检查后再试"
	}
	return m, ""
}

// api wraps a handler with authentication, the mode's delay and faults,
// and the platform signature of the answer.
func (s *Sim) api(op string, h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			return
		}
		m, bad := s.authenticate(r, body)
		if bad != "" {
			s.count(op + "_sign_error")
			s.writeSigned(w, r, apiError(http.StatusUnauthorized, paychannel.CodeSignError, bad))
			return
		}
		mode := s.Mode()
		if mode.DelayMS > 0 && !simulate.Wait(r, time.Duration(mode.DelayMS)*time.Millisecond) {
			return
		}
		f := s.takeFault(op)
		switch f {
		case FaultError:
			s.count(op + "_fault")
			s.writeSigned(w, r, apiError(http.StatusInternalServerError, paychannel.CodeSystemError, "系统错误，请稍后重试（模拟故障）"))
			return
		case FaultDrop:
			s.count(op + "_fault")
			drop(w)
			return
		case FaultTimeout:
			s.count(op + "_fault")
			simulate.Wait(r, 30*time.Second)
			drop(w)
			return
		}
		a := h(r, m, body)
		s.count(op)
		switch f {
		case FaultErrorAfter:
			s.count(op + "_fault")
			s.writeSigned(w, r, apiError(http.StatusInternalServerError, paychannel.CodeSystemError, "系统错误，请稍后重试（模拟故障，请求已处理）"))
		case FaultTimeoutAfter:
			s.count(op + "_fault")
			simulate.Wait(r, 30*time.Second)
			drop(w)
		default:
			s.writeSigned(w, r, a)
		}
	})
}

// drop closes the connection without an answer, as a broken network does.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// requestScheme is the algorithm to answer r in: the channel answers a
// WECHATPAY2-SM2-WITH-SM3 request with SM2, anything else with RSA.
func requestScheme(r *http.Request) string {
	if strings.HasPrefix(r.Header.Get("Authorization"), paychannel.AuthSchemeSM2+" ") {
		return paychannel.AuthSchemeSM2
	}
	return paychannel.AuthScheme
}

// writeSigned writes an answer to r with the platform's signature headers.
func (s *Sim) writeSigned(w http.ResponseWriter, r *http.Request, a answer) {
	var b []byte
	if a.body != nil {
		var err error
		if b, err = json.Marshal(a.body); err != nil {
			a, b = apiError(http.StatusInternalServerError, paychannel.CodeSystemError, "系统错误"), nil
			b, _ = json.Marshal(a.body)
		}
	}
	s.signHeaders(w.Header(), requestScheme(r), b)
	if b != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(a.status)
	w.Write(b)
}

// signHeaders sets the Wechatpay-* headers for body, signed with the
// platform key of scheme.
func (s *Sim) signHeaders(h http.Header, scheme string, body []byte) {
	p := s.platform(scheme)
	ts := strconv.FormatInt(s.cfg.Now().Unix(), 10)
	nonce := paychannel.NewNonce()
	sig, err := paychannel.Sign(p.key, paychannel.ResponseMessage(ts, nonce, body))
	if err != nil {
		s.log.Error("sign answer", "err", err)
	}
	h.Set(paychannel.HeaderTimestamp, ts)
	h.Set(paychannel.HeaderNonce, nonce)
	h.Set(paychannel.HeaderSignature, sig)
	h.Set(paychannel.HeaderSerial, p.serial)
	h.Set(paychannel.HeaderSignatureType, scheme)
	h.Set(paychannel.HeaderRequestID, fmt.Sprintf("%s-%d", nonce[:8], time.Now().UnixNano()))
}
