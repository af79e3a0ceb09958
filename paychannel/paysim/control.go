package paysim

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"

	"ihos/internal/simulate"
	"ihos/paychannel"
)

// Mode is how the simulator behaves, as POST /control/mode sets it (the
// whole mode at once: fields left out go back to their zero value, which
// is the normal behaviour).
type Mode struct {
	// AutoPay pays every new order AutoPayDelayMS after it is created, as
	// if the patient paid at once (for load tests and unattended demos).
	AutoPay        bool  `json:"auto_pay"`
	AutoPayDelayMS int64 `json:"auto_pay_delay_ms"`
	// EarlyNotify, with AutoPay, pays the order and makes the first notify
	// attempt before the create call is answered.
	EarlyNotify bool `json:"early_notify"`
	// DuplicateNotify sends every notify this many more times after the
	// merchant acknowledged it.
	DuplicateNotify int `json:"duplicate_notify"`
	// NotifyDelayMS delays the first notify attempt.
	NotifyDelayMS int64 `json:"notify_delay_ms"`
	// NoNotify sends no notifies at all (lost notifies: only Query tells).
	NoNotify bool `json:"no_notify"`
	// UserPayingMS keeps a payment in USERPAYING this long before it ends
	// as PayResult.
	UserPayingMS int64 `json:"user_paying_ms"`
	// PayResult is how payments end: "" or SUCCESS, or PAYERROR.
	PayResult string `json:"pay_result,omitempty"`
	// RefundDelayMS keeps a refund PROCESSING this long.
	RefundDelayMS int64 `json:"refund_delay_ms"`
	// RefundAbnormal makes the next this-many refund attempts end ABNORMAL;
	// sending the same out_refund_no again retries it.
	RefundAbnormal int `json:"refund_abnormal"`
	// DelayMS delays every API answer (after authentication).
	DelayMS int64 `json:"delay_ms"`
	// Faults break API calls; the first matching fault with calls left
	// applies.
	Faults []Fault `json:"faults,omitempty"`
}

// Fault breaks calls of one operation.
type Fault struct {
	// Op is create (JSAPI and Native), query, close, refund, refund_query,
	// bill, or "" for all of them.
	Op string `json:"op"`
	// Kind is FaultError, FaultErrorAfter, FaultTimeout, FaultTimeoutAfter
	// or FaultDrop.
	Kind string `json:"kind"`
	// Count is how many calls break; 0 means every call until the mode
	// changes.
	Count int `json:"count"`
}

// Fault kinds. The "after" kinds do the work first (the order is created,
// the refund accepted) and then lose the answer: the case a client must
// survive by querying.
const (
	FaultError        = "error"         // HTTP 500 SYSTEM_ERROR, nothing done
	FaultErrorAfter   = "error_after"   // done, then HTTP 500 SYSTEM_ERROR
	FaultTimeout      = "timeout"       // no answer until the client gives up (at most 30 s), nothing done
	FaultTimeoutAfter = "timeout_after" // done, then no answer
	FaultDrop         = "drop"          // the connection is closed at once, nothing done
)

var faultOps = map[string]bool{"": true, "all": true, "create": true, "query": true, "close": true, "refund": true, "refund_query": true, "bill": true}

// Mode returns the current mode.
func (s *Sim) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mode
	m.Faults = append([]Fault(nil), m.Faults...)
	return m
}

// SetMode replaces the mode.
func (s *Sim) SetMode(m Mode) error {
	switch m.PayResult {
	case "", paychannel.TradeSuccess, paychannel.TradePayError:
	default:
		return fmt.Errorf("pay_result %q: want SUCCESS or PAYERROR", m.PayResult)
	}
	for _, f := range m.Faults {
		if !faultOps[f.Op] {
			return fmt.Errorf("fault op %q: want create, query, close, refund, refund_query, bill or empty", f.Op)
		}
		switch f.Kind {
		case FaultError, FaultErrorAfter, FaultTimeout, FaultTimeoutAfter, FaultDrop:
		default:
			return fmt.Errorf("fault kind %q: want error, error_after, timeout, timeout_after or drop", f.Kind)
		}
	}
	m.Faults = append([]Fault(nil), m.Faults...)
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
	s.log.Info("mode changed", "mode", m)
	return nil
}

// takeFault returns the fault kind for one call of op, or "", and counts
// the call against the fault.
func (s *Sim) takeFault(op string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.mode.Faults {
		f := &s.mode.Faults[i]
		if f.Op != "" && f.Op != "all" && f.Op != op || f.Count < 0 {
			continue
		}
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				f.Count = -1 // used up
			}
		}
		return f.Kind
	}
	return ""
}

// Pay is the patient paying order outTradeNo of merchant mchid (mchid ""
// means the only merchant): result "" means the mode's PayResult. Paying a
// paid order again takes nothing and returns it as it is.
func (s *Sim) Pay(mchid, outTradeNo, result string) (paychannel.Transaction, error) {
	if mchid == "" {
		s.mu.Lock()
		if len(s.merchants) == 1 {
			for k := range s.merchants {
				mchid = k
			}
		}
		s.mu.Unlock()
	}
	return s.pay(mchid, outTradeNo, result, "", false)
}

func (s *Sim) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /control", s.controlState)
	mux.HandleFunc("GET /control/platform", func(w http.ResponseWriter, r *http.Request) {
		simulate.JSON(w, http.StatusOK, map[string]string{"serial_no": s.rsa.serial, "certificate": string(s.PlatformCertPEM()),
			"public_key":    string(paychannel.MarshalPublicKeyPEM(s.rsa.key.Public())),
			"sm2_serial_no": s.sm2.serial, "sm2_certificate": string(s.PlatformSM2CertPEM()),
			"sm2_public_key": string(paychannel.MarshalPublicKeyPEM(s.sm2.key.Public()))})
	})
	mux.HandleFunc("GET /control/platform.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(s.PlatformCertPEM())
	})
	mux.HandleFunc("GET /control/platform-sm2.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(s.PlatformSM2CertPEM())
	})
	mux.HandleFunc("POST /control/merchant", s.controlMerchant)
	mux.HandleFunc("POST /control/mode", func(w http.ResponseWriter, r *http.Request) {
		var m Mode
		if err := decode(r, &m); err != nil {
			simulate.Message(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := s.SetMode(m); err != nil {
			simulate.Message(w, http.StatusBadRequest, err.Error())
			return
		}
		simulate.JSON(w, http.StatusOK, s.Mode())
	})
	mux.HandleFunc("POST /control/pay", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			MchID      string `json:"mchid"`
			OutTradeNo string `json:"out_trade_no"`
			Result     string `json:"result"`
		}
		if err := decode(r, &in); err != nil {
			simulate.Message(w, http.StatusBadRequest, err.Error())
			return
		}
		t, err := s.Pay(in.MchID, in.OutTradeNo, in.Result)
		if err != nil {
			simulate.Message(w, http.StatusConflict, err.Error())
			return
		}
		simulate.JSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("GET /control/notifies", func(w http.ResponseWriter, r *http.Request) {
		simulate.JSON(w, http.StatusOK, map[string]any{"notifies": s.Notifies()})
	})
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("JSON 格式不正确：" + err.Error())
	}
	return nil
}

func (s *Sim) controlState(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	counts := map[string]int64{}
	for k, v := range s.counts {
		counts[k] = v
	}
	var mchids []string
	for k := range s.merchants {
		mchids = append(mchids, k)
	}
	orders, refunds := len(s.orders), len(s.refunds)
	s.mu.Unlock()
	simulate.JSON(w, http.StatusOK, map[string]any{"url": s.url, "platform_serial": s.rsa.serial, "platform_sm2_serial": s.sm2.serial, "mode": s.Mode(),
		"merchants": mchids, "orders": orders, "refunds": refunds, "counters": counts})
}

// controlMerchant registers a merchant: {"mchid", "appid", "serial_no",
// "public_key" (PEM, RSA or SM2), "apiv3_key" (32 characters)}. The answer's
// platform_serial is the platform certificate of the key's algorithm.
func (s *Sim) controlMerchant(w http.ResponseWriter, r *http.Request) {
	var in struct {
		MchID     string `json:"mchid"`
		AppID     string `json:"appid"`
		SerialNo  string `json:"serial_no"`
		PublicKey string `json:"public_key"`
		APIv3Key  string `json:"apiv3_key"`
	}
	if err := decode(r, &in); err != nil {
		simulate.Message(w, http.StatusBadRequest, err.Error())
		return
	}
	pub, _, err := paychannel.ParsePublicKeyPEM([]byte(in.PublicKey))
	if err != nil {
		simulate.Message(w, http.StatusBadRequest, "商户公钥无法解析："+err.Error())
		return
	}
	if err := s.AddMerchant(Merchant{MchID: in.MchID, AppID: in.AppID, SerialNo: in.SerialNo, PublicKey: pub, APIv3Key: []byte(in.APIv3Key)}); err != nil {
		simulate.Message(w, http.StatusBadRequest, err.Error())
		return
	}
	simulate.JSON(w, http.StatusOK, map[string]string{"mchid": in.MchID, "platform_serial": s.platform(paychannel.SchemeOf(pub)).serial})
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
