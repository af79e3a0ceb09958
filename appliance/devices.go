package appliance

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/config"
	"ihos/internal/node"
	"ihos/kiosk"
	"ihos/payments"
	"ihos/printing"
	"ihos/recorder"
	"ihos/tickets"
)

// defaultHospitalName is printed and shown until an institution is set up.
const defaultHospitalName = "互联网医院"

// hospitalName is the main institution's name: the header of every ticket and
// kiosk screen.
func (a *App) hospitalName(ctx context.Context) string {
	var name string
	err := a.Node.DB.QueryRowContext(ctx, `SELECT name FROM institutions WHERE parent_id IS NULL AND deleted_at IS NULL ORDER BY created_at LIMIT 1`).Scan(&name)
	if err != nil || name == "" {
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			slog.Warn("hospital name", "err", err)
		}
		return defaultHospitalName
	}
	return name
}

// kioskPrinter gives the kiosk the print queue in the kiosk's own terms.
type kioskPrinter struct{ s *printing.Service }

func (p kioskPrinter) Print(ctx context.Context, printerID string, t kiosk.Ticket, title, source, patientRef string) (string, error) {
	tt, ok := t.(tickets.Ticket)
	if !ok {
		return "", ihos.Errorf(ihos.EInvalid, "无法打印此类凭条")
	}
	j, err := p.s.PrintTitled(ctx, printerID, tt, title, source, patientRef)
	return j.ID, err
}

func (p kioskPrinter) JobStatus(ctx context.Context, id string) (string, string, error) {
	j, err := p.s.Job(ctx, id)
	if err != nil {
		return "", "", err
	}
	return kioskStatus(j), j.LastError, nil
}

// kioskStatus maps a job's status to what the kiosk tells the patient: a job
// waiting for staff to confirm it (unknown) sends the patient to a counter.
func kioskStatus(j printing.Job) string {
	switch j.Status {
	case printing.StatusPrinted:
		return kiosk.JobPrinted
	case printing.StatusFailed, printing.StatusCancelled, printing.StatusUnknown:
		return kiosk.JobFailed
	}
	return kiosk.JobPending
}

func (p kioskPrinter) PatientJobs(ctx context.Context, patientRef string, limit int) ([]kiosk.PrintedTicket, error) {
	jobs, err := p.s.PatientJobs(ctx, patientRef, limit)
	if err != nil {
		return nil, err
	}
	out := make([]kiosk.PrintedTicket, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, kiosk.PrintedTicket{JobID: j.ID, Kind: j.Kind, Title: j.Title, Status: kioskStatus(j), CreatedAt: j.CreatedAt})
	}
	return out, nil
}

func (p kioskPrinter) Reprint(ctx context.Context, jobID, source string) (string, error) {
	j, err := p.s.Reprint(ctx, jobID, source)
	return j.ID, err
}

// RecorderConfig is where body-worn recorders are looked for when plugged in,
// and how long their footage is kept.
type RecorderConfig struct {
	// WatchRoots are the folders where mounted USB storage appears; empty:
	// /media, /run/media and /mnt on Linux, D: to Z: on Windows.
	WatchRoots []string `json:"watch_roots"`
	// RetentionYears is raised to the legal minimum of 3.
	RetentionYears int `json:"retention_years" env:"IHOS_RECORDER_RETENTION_YEARS"`
	// AutoPrune deletes footage past retention (not on hold) in the daily run;
	// off by default: keeping footage longer never breaks a rule.
	AutoPrune bool `json:"auto_prune" env:"IHOS_RECORDER_AUTO_PRUNE"`
}

func newRecorder(n *node.Node, cfg RecorderConfig) *recorder.Service {
	return &recorder.Service{DB: n.DB, Dir: filepath.Join(n.Config.DataDir, "recordings"),
		Orders: recorder.NursingVisits{DB: n.DB}, WatchRoots: cfg.WatchRoots,
		RetentionYears: cfg.RetentionYears, AutoPrune: cfg.AutoPrune}
}

// startDevices wires the ticket templates, the print queue, the kiosk and the
// recorder import into the console and the API, and starts their workers,
// which run until ctx ends (Close waits for them).
func (a *App) startDevices(ctx context.Context, cfg Config, mux *http.ServeMux) {
	n := a.Node
	name := a.hospitalName(ctx)
	a.Tickets.Hospital, a.Printing.Hospital = name, name
	a.Insurance = newInsurance(cfg.Insurance, name)
	a.startSettle(cfg, mux)
	a.Kiosk = kiosk.New(n.DB, a.HIS.HIS, kioskPrinter{a.Printing}, vouchers{a.Insurance}, name)
	a.Kiosk.Secure = cfg.SecureCookies

	a.Tickets.Routes(mux, n.AuthorizeCLIOr)
	a.Printing.Routes(mux, n.AuthorizeCLIOr)
	a.Recorder.Routes(mux, n.AuthorizeCLIOr)
	a.Kiosk.Routes(mux)
	// Payments are the cloud's; the appliance holds their replica for the
	// console's 支付订单查询 (GET /api/admin/payments).
	(&payments.Service{DB: n.DB}).AdminRoutes(mux, n.AuthorizeCLIOr)
	pay := &payments.Service{DB: n.DB}
	pay.ExportRoutes(mux, n.AuthorizeCLIOr)
	a.Console.AddPage(pay.Page())
	a.Console.AddPage(pay.StatsPage())
	a.startReconcile(cfg.HospitalID, mux)
	a.Console.AddPage(a.Printing.Page(n.Auth))
	a.Console.AddPage(a.Tickets.Page(n.Auth))
	a.Console.AddPage(a.Kiosk.Page(n.Auth))
	a.Console.AddPage(a.Recorder.Page(n.Auth))

	invoices := a.startInvoicing(ctx, cfg, mux)
	a.startBillpay(ctx, cfg.HospitalID)
	a.startStaffApp(ctx, cfg, mux)
	if a.seededDemo {
		sys := asSystem(ctx)
		if err := seedDemoConsultation(sys, a.Store); err != nil {
			slog.ErrorContext(ctx, "demo: consultation settings", "err", err)
		}
	}
	if cfg.Demo {
		a.demoSittings(ctx, demoDoctorJobNo)
	}
	a.Kiosk.Cashier = cashier{hospital: cfg.HospitalID, link: a.Link, settle: a.Settle, invoices: invoices}
	a.devices.Go(func() { a.Printing.Run(ctx) })
	a.devices.Go(func() { a.Recorder.Run(ctx) })
	if a.seededDemo {
		a.demoKioskCode(ctx, cfg)
	}
}

// Demo devices: the kiosk in the outpatient hall prints on the demo printer.
const (
	demoPrinterName = "门诊大厅自助机打印机"
	demoKioskName   = "门诊大厅 1 号机"
)

// seedDemoDevices adds the demo printer and kiosk on first start.
func seedDemoDevices(ctx context.Context, s *admin.Store, printerAddr string) error {
	if printerAddr == "" {
		printerAddr = "127.0.0.1:9100"
	}
	res := func(name string) *admin.Resource { r, _ := s.Resource(name); return r }
	p, err := s.Create(ctx, res("printers"), map[string]any{"name": demoPrinterName, "location": "门诊大厅",
		"transport": "tcp", "address": printerAddr, "paper_mm": "80", "code_page": "GB18030", "enabled": true})
	if err != nil {
		return err
	}
	_, err = s.Create(ctx, res("kiosks"), map[string]any{"name": demoKioskName, "location": "门诊大厅",
		"printer_id": p["id"], "enabled": true, "idle_seconds": 90})
	return err
}

// demoKioskCode writes a pairing code of the new demo kiosk into the
// credentials file on first start: `make run` prints it, and whoever opens
// /kiosk/ in a browser within its 10 minutes pairs it as IT would pair the real
// machine (later, the console's 自助机 page makes a new code). Restarts leave
// the credentials file alone.
func (a *App) demoKioskCode(ctx context.Context, cfg Config) {
	ks, err := a.Kiosk.Kiosks(ctx)
	if err != nil {
		slog.Warn("demo kiosk", "err", err)
		return
	}
	for _, k := range ks {
		if k.Name != demoKioskName || k.Paired {
			continue
		}
		code, err := a.Kiosk.NewPairingCode(ihos.WithActor(ctx, ihos.System), k.ID)
		if err != nil {
			slog.Warn("demo kiosk pairing code", "err", err)
			return
		}
		path := cfg.Credentials
		if path == "" {
			path = filepath.Join(a.Node.Config.DataDir, "initial-credentials.json")
		}
		if err := config.MergeJSON(path, map[string]any{"kiosk": map[string]string{
			"url": "http://" + a.Node.Config.HTTP + "/kiosk/", "pairing_code": code}}); err != nil {
			slog.Warn("demo kiosk pairing code", "err", err)
		}
	}
}
