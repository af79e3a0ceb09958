package appliance

import (
	"context"
	"database/sql"
	"net"
	"net/http"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/his"
	"ihos/sync"
)

// HISConfig is how the appliance reaches the hospital's HIS
// (docs/his-interface.md). With neither address set the link is idle: orders
// queue up, the console raises the alarm, and nothing is lost until IT
// configures it.
type HISConfig struct {
	MLLP     string        `json:"mllp" env:"IHOS_HIS_MLLP"`                   // the HIS's HL7 MLLP listener, host:port (the default adapter)
	URL      string        `json:"url" env:"IHOS_HIS_URL"`                     // the HIS's HTTP/JSON base URL, used when MLLP is empty
	Listen   string        `json:"listen" env:"IHOS_HIS_LISTEN"`               // our MLLP listener for results the HIS sends
	Catalog  time.Duration `json:"catalog_every" env:"IHOS_HIS_CATALOG_EVERY"` // catalogue refresh interval (default 1 h)
	Facility string        `json:"facility" env:"IHOS_HIS_FACILITY"`           // MSH-4: our facility code
}

// unconfigured is the HIS before IT has set an address.
type unconfigured struct{}

var errNoHIS = ihos.Errorf(ihos.EUnavailable, "尚未配置医院 HIS 接口地址，请联系信息科")

func (unconfigured) FindPatients(context.Context, ihos.PatientIdentifier) ([]ihos.HISPatient, error) {
	return nil, errNoHIS
}
func (unconfigured) VisitHistory(context.Context, string, time.Time) ([]ihos.HISVisit, error) {
	return nil, errNoHIS
}
func (unconfigured) UnpaidFees(context.Context, string) ([]ihos.HISFee, error) { return nil, errNoHIS }
func (unconfigured) Reports(context.Context, string, time.Time) ([]ihos.HISReport, error) {
	return nil, errNoHIS
}
func (unconfigured) Catalog(context.Context, string) ([]ihos.CatalogItem, error) {
	return nil, errNoHIS
}
func (unconfigured) Deliver(context.Context, ihos.HISMessage) (ihos.HISAck, error) {
	return ihos.HISAck{}, errNoHIS
}

// hisLink is the running HIS link.
type hisLink struct {
	svc      *his.Service
	listener *his.Listener
	mode     string // which adapter, for the console
	close    func()
}

// startHIS wires the HIS adapter, the queue, the result listener and the
// catalogue refresh, and registers the API.
func (a *App) startHIS(ctx context.Context, cfg HISConfig, hospital string, mux *http.ServeMux) (*hisLink, error) {
	rec := &his.Recorder{DB: a.Node.DB}
	var (
		adapter ihos.HIS = unconfigured{}
		httpHIS *his.HTTP
		closers []func()
	)
	switch {
	case cfg.MLLP != "":
		h := his.NewHL7(cfg.MLLP)
		h.Facility, h.Observe = cfg.Facility, rec.Observe
		adapter = h.Start()
		closers = append(closers, func() { h.Close() })
	case cfg.URL != "":
		httpHIS = &his.HTTP{BaseURL: cfg.URL, Observe: rec.Observe}
		adapter = httpHIS
	}
	q := &his.Queue{DB: a.Node.DB, HIS: adapter}
	svc := &his.Service{DB: a.Node.DB, HIS: adapter, Queue: q, Hospital: hospital, AfterCommit: a.Link.Kick,
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, hospital, refs...)
		}}
	q.OnAnswer = svc.OnAnswer
	l := &hisLink{svc: svc, mode: "未配置"}
	switch {
	case cfg.MLLP != "":
		l.mode = "HL7 MLLP " + cfg.MLLP
	case cfg.URL != "":
		l.mode = "HTTP " + cfg.URL
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg stdsync.WaitGroup
	wg.Go(func() { rec.Run(rctx) })
	wg.Go(func() { q.Run(rctx) })
	if _, ok := adapter.(unconfigured); !ok {
		every := cfg.Catalog
		if every <= 0 {
			every = time.Hour
		}
		wg.Go(func() { svc.RunCatalogRefresh(rctx, every) })
	}
	if httpHIS != nil {
		wg.Go(func() { svc.RunResultPoll(rctx, httpHIS, 5*time.Second) })
	}
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			cancel()
			return nil, ihos.Errorf(ihos.EInvalid, "HIS 结果接收端口 %s 无法监听：%v", cfg.Listen, err)
		}
		l.listener = &his.Listener{Service: svc, Observe: rec.Observe}
		go l.listener.Serve(ln)
		closers = append(closers, func() { l.listener.Close() })
	}
	l.close = func() {
		for _, c := range closers {
			c()
		}
		cancel()
		wg.Wait() // the recorder writes what it holds before the database closes
	}
	svc.Routes(mux, a.Node.AuthorizeCLIOr)
	if err := svc.ServeRPC(a.Link); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}
