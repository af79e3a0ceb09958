// Package printing is the appliance's durable print queue for ticket printers:
// registration slips, receipts, report summaries and the like, printed at the
// kiosk and at the counters.
//
// # Queue
//
// A job is the finished ESC/POS bytes of one ticket, stored in print_jobs
// when it is queued (Print renders a tickets.Ticket for the printer's paper
// width and code page; Enqueue takes bytes already rendered). Storing the
// bytes makes a reprint the very same ticket and lets the queue survive a
// restart without anything else.
//
// Each enabled printer has one worker (Run starts and stops them as printers
// are added, edited, disabled or deleted). A printer's jobs print strictly in
// the order they were queued: the oldest job that is not finished (its "lane
// head") holds the printer until it is printed, cancelled or confirmed, so a
// patient's receipt never overtakes the registration slip before it.
//
// # Exactly once
//
// A printer's status (DLE EOT) says whether it can print now, not whether a
// ticket came out: a fault that appears while a ticket is being sent cannot
// be placed before or after the ticket's cut. ESC/POS has the answer to that
// question: GS ( H function 48 ("process ID response", escpos.ProcessID).
// The printer sends 37h 22h d1 d2 d3 d4 00h back once it has processed, and
// for print data that means printed, everything received before the
// command; IDs of data it cleared without processing are never sent (Epson
// ESC/POS reference, GS ( H fn 48:
// https://download4.epson.biz/sec_pubs/pos/reference_en/escpos/gs_lparen_ch_fn48.html).
// A printer processes its input in order, so a response also tells that
// nothing before it is still pending. The worker therefore brackets every
// send like this:
//
//  1. Ask the printer's status. Paper out, cover open, offline, or no answer:
//     nothing is sent; the job stays queued, last_error says why in Chinese
//     (缺纸, 纸仓盖打开, 打印机离线, …) and the worker backs off (MinBackoff
//     doubling to MaxBackoff, with jitter), checking the status meanwhile so
//     that a refilled printer resumes within StatusInterval. The first time
//     a worker finds its printer ready, it probes it: a process ID request
//     with no print data before it, which a printer that implements the
//     command answers at once (ConfirmSupported). No answer within
//     ConfirmGrace while the printer still reports no fault: it does not
//     (ConfirmUnsupported; many compatible models), and the fallback below
//     is used. The result is kept in memory for the worker's life, logged,
//     and shown in the console ("不支持打印完成确认").
//  2. Mark the job printing and commit. From here on a crash must not resend:
//     the bytes may have reached the printer.
//  3. Write the ticket followed by a process ID request, in one write. The
//     ID is four digits: the last three of the job's seq and the last of its
//     attempt count, so that a response to an earlier job or attempt is
//     never taken for this one.
//  4. Wait for the response, asking the status every StatusInterval (at most
//     500 ms), as follows.
//
// Waiting for the response:
//
//   - The response: printed, committed; the lane moves on.
//   - The printer reports a fault: keep waiting. A printer that keeps its
//     buffer (Epson's do) finishes the ticket once paper is loaded or the
//     cover closed, and answers then.
//   - The printer has reported no fault for ConfirmGrace and has not
//     answered: send a probe, another process ID request with no data before
//     it, and keep waiting for both. The job's response arriving first:
//     printed. The probe's response arriving without the job's: the printer
//     processed everything up to the probe without processing the ticket, so
//     it cleared the ticket (printers that clear their buffer on paper out,
//     and the simulator, lose a ticket a fault interrupts): the job goes
//     back to the queue and is sent again, automatically.
//   - No answer to maxSilentProbes probes, one per ConfirmGrace, while the
//     printer reports no fault: it no longer answers process ID requests (it
//     was replaced by another model, say, or it is still printing a very
//     long ticket): the job becomes unknown and the printer
//     ConfirmUnsupported.
//   - The connection breaks, or the service stops: unknown.
//
// Without process ID support (step 4 for ConfirmUnsupported printers) the
// worker asks the status right after the write: all well, printed; paper
// out, cover open, offline or no answer, unknown. The Windows spooler
// transport has neither status nor a back channel: a job is printed once
// the spooler accepted it.
//
// A job whose write failed before all its bytes were accepted goes back to the
// queue: without its last bytes (the cut) no complete ticket came out. A job
// whose outcome cannot be known becomes "unknown" (待确认) and holds its
// printer's lane until a person looks at the printer and confirms in the
// console: "已打印" (printed) or "重新打印" (send it again). Such jobs are never
// re-sent automatically, since that could print a ticket twice. With a
// printer that confirms they are rare: a job found "printing" when the
// service starts (it stopped between step 2 and the outcome; a response may
// have been lost with the process, and a new connection does not get it
// again, so even a printer that is online and idle now cannot tell), a
// connection that broke while waiting, a printer that stopped answering.
//
// Why this design (the reasoning for docs/decisions/0011):
//
//   - Status alone cannot decide. The fault and the cut race, and the two
//     kinds of printers disagree on what a fault does to a ticket in the
//     buffer (kept and finished later, or cleared), so after a fault in the
//     middle of a job either choice, resend or not, is wrong for one of them.
//     Until now a person decided; the acceptance asks for no person.
//   - The process ID response is a positive acknowledgement from the printer
//     itself, in order with the data, so "printed" needs no guess. "Not
//     printed" needs one more fact, since silence can mean "still busy": the
//     probe sent after the job gives it. Order is what the decision rests
//     on; ConfirmGrace only decides when to probe and how long silence is
//     tolerated, so a slow printer delays a job but is not sent it twice.
//     Epson sends only the latest of several pending responses when the
//     host cannot receive, which does not happen here: the worker reads the
//     back channel for the whole wait, on the connection it wrote on.
//   - Printers that do not implement the command are detected by a bare
//     probe, which no fault can turn into lost data, and keep the status
//     fallback with a person for the ambiguous case; the console says so.
//     A clone that does not know GS ( H may print its bytes as text once,
//     on the probe; that risk is taken once per worker start.
//   - The remaining risk: a printer that clears its buffer and then misses
//     the probe too (a fault again) is probed again; one whose back channel
//     loses bytes (a noisy serial line) may make a printed ticket look lost
//     only if it drops the job's response and delivers the later probe's.
//
// Live printer status (online, paper, cover, last check) is kept in memory: it
// describes the printer now and means nothing after a restart.
package printing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/drivers/transport"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/tickets"
)

// Job states.
const (
	StatusQueued    = "queued"    // waiting for its turn or for the printer
	StatusPrinting  = "printing"  // being sent (its bytes may have reached the printer)
	StatusPrinted   = "printed"   // the printer confirmed the ticket, or took it and reported no fault
	StatusFailed    = "failed"    // cannot be printed (its printer was deleted); no longer holds a lane
	StatusCancelled = "cancelled" // a person gave up on it
	StatusUnknown   = "unknown"   // 待确认: may or may not have printed; holds the lane until confirmed
)

// StatusLabels names the job states for staff.
var StatusLabels = map[string]string{
	StatusQueued: "排队中", StatusPrinting: "正在打印", StatusPrinted: "已打印", StatusFailed: "失败",
	StatusCancelled: "已取消", StatusUnknown: "待确认",
}

// Limits.
const (
	// MaxJobBytes bounds one job's data (a ticket with a logo is tens of KB).
	MaxJobBytes = 4 << 20
	// KindRaw is the kind of jobs queued as bytes by callers that did not
	// render a tickets.Ticket.
	KindRaw = "raw"
)

// Service is the print queue and its printers.
type Service struct {
	DB      *sqldb.DB
	Tickets *tickets.Store
	// Open connects to a printer; transport.Open when nil. Tests put a
	// simulator or a fake behind it.
	Open func(ctx context.Context, kind, address string) (transport.Conn, error)
	// Hospital is printed on test pages (tickets.Store's Hospital when empty).
	Hospital string
	Logger   *slog.Logger

	// Timing; zero values take the defaults in brackets.
	MinBackoff      time.Duration // first wait after a failed attempt (1 s)
	MaxBackoff      time.Duration // longest wait between attempts (30 s)
	StatusInterval  time.Duration // how often an idle or waiting printer's status is checked (5 s)
	RefreshInterval time.Duration // how often Run re-reads the printer list without a Notify (3 s)
	// ConfirmGrace is how long a printer that answers process ID requests
	// may report no fault without confirming a ticket before it is probed
	// (see the package comment), and how long a first probe may go
	// unanswered before the printer is taken as one that does not answer
	// them (3 s).
	ConfirmGrace time.Duration

	once    stdsync.Once
	mu      stdsync.Mutex
	workers map[string]*worker     // running workers by printer id
	live    map[string]*LiveStatus // last known status by printer id
	notify  chan struct{}

	// wrote, if set, is called right after a job's bytes were written to the
	// printer (the benchmark measures queue overhead with it).
	wrote func(jobID string)
	// settled, if set, is called after a send's outcome was committed.
	settled func(jobID string)
}

func (s *Service) init() {
	s.once.Do(func() {
		if s.Open == nil {
			s.Open = transport.Open
		}
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.MinBackoff <= 0 {
			s.MinBackoff = time.Second
		}
		if s.MaxBackoff <= 0 {
			s.MaxBackoff = 30 * time.Second
		}
		if s.MaxBackoff < s.MinBackoff {
			s.MaxBackoff = s.MinBackoff
		}
		if s.StatusInterval <= 0 {
			s.StatusInterval = 5 * time.Second
		}
		if s.RefreshInterval <= 0 {
			s.RefreshInterval = 3 * time.Second
		}
		if s.ConfirmGrace <= 0 {
			s.ConfirmGrace = 3 * time.Second
		}
		s.workers = map[string]*worker{}
		s.live = map[string]*LiveStatus{}
		s.notify = make(chan struct{}, 1)
	})
}

// Notify tells Run that printers changed (the printers resource's AfterWrite
// calls it), so workers start or stop now rather than at the next refresh.
func (s *Service) Notify() {
	s.init()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// kick wakes the worker of printerID, if it runs.
func (s *Service) kick(printerID string) {
	s.init()
	s.mu.Lock()
	w := s.workers[printerID]
	s.mu.Unlock()
	if w != nil {
		w.wake()
	}
}

// Printer is a configured printer.
type Printer struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Location  string `json:"location"`
	Transport string `json:"transport"`
	Address   string `json:"address"`
	PaperMM   int    `json:"paper_mm"`
	CodePage  string `json:"code_page"`
	Enabled   bool   `json:"enabled"`
}

// Format is the ticket format this printer takes.
func (p Printer) Format() tickets.Format {
	return tickets.Format{PaperMM: p.PaperMM, CodePage: p.CodePage}
}

// Job is one queued ticket.
type Job struct {
	ID            string    `json:"id"`
	PrinterID     string    `json:"printer_id"`
	Seq           int64     `json:"seq"`
	Kind          string    `json:"kind"`
	Title         string    `json:"title"`
	Status        string    `json:"status"`
	Source        string    `json:"source"`
	PatientRef    string    `json:"patient_ref"`
	ReprintOf     string    `json:"reprint_of,omitempty"`
	LastError     string    `json:"last_error"`
	Attempts      int       `json:"attempts"`
	Bytes         int       `json:"bytes"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
	PrintedAt     time.Time `json:"printed_at,omitzero"`
}

// NewJob is a job to queue: its rendered bytes and what to show about it.
type NewJob struct {
	Kind       string // a tickets kind, or KindRaw
	Title      string // shown in the console; tickets.Title(Kind) when empty
	Source     string // who asked: "kiosk:<id>", "console:<user>", …
	PatientRef string // lets the kiosk find a patient's tickets for reprint; may be ""
	Data       []byte // ESC/POS bytes, ending with the cut
	reprintOf  string
}

const printerCols = `id, name, location, transport, address, paper_mm, code_page, enabled`

func scanPrinter(row interface{ Scan(...any) error }) (Printer, error) {
	var p Printer
	var paper string
	var enabled int
	if err := row.Scan(&p.ID, &p.Name, &p.Location, &p.Transport, &p.Address, &paper, &p.CodePage, &enabled); err != nil {
		return p, err
	}
	p.PaperMM, _ = strconv.Atoi(paper)
	p.Enabled = enabled != 0
	return p, nil
}

// Printer returns the printer id (enabled or not; deleted ones are not found).
func (s *Service) Printer(ctx context.Context, id string) (Printer, error) {
	p, err := scanPrinter(s.DB.QueryRowContext(ctx, `SELECT `+printerCols+` FROM printers WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, ihos.Errorf(ihos.ENotFound, "打印机不存在或已删除")
	}
	if err != nil {
		return p, ihos.Internal(err)
	}
	return p, nil
}

// printers lists the printers that are not deleted, by name.
func (s *Service) printers(ctx context.Context, enabledOnly bool) ([]Printer, error) {
	q := `SELECT ` + printerCols + ` FROM printers WHERE deleted_at IS NULL`
	if enabledOnly {
		q += ` AND enabled = 1`
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY name, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []Printer
	for rows.Next() {
		p, err := scanPrinter(rows)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// Print renders t for the printer's paper width and code page, stores the
// bytes and queues the job; source names who asked ("kiosk:<id>",
// "console:<user>", …), patientRef lets the kiosk find a patient's earlier
// tickets for reprint (may be "").
func (s *Service) Print(ctx context.Context, printerID string, t tickets.Ticket, source, patientRef string) (Job, error) {
	return s.PrintTitled(ctx, printerID, t, "", source, patientRef)
}

// PrintTitled is Print with the title the console and the kiosk's reprint
// list show for the job (e.g. "检验报告 血常规 LAB00000157"); empty takes the
// kind's name.
func (s *Service) PrintTitled(ctx context.Context, printerID string, t tickets.Ticket, title, source, patientRef string) (Job, error) {
	p, err := s.Printer(ctx, printerID)
	if err != nil {
		return Job{}, err
	}
	if !p.Enabled {
		return Job{}, errDisabled(p)
	}
	data, err := s.render(ctx, t, p.Format())
	if err != nil {
		return Job{}, err
	}
	return s.Enqueue(ctx, printerID, NewJob{Kind: t.TicketKind(), Title: title, Source: source, PatientRef: patientRef, Data: data})
}

func errDisabled(p Printer) error {
	return ihos.Errorf(ihos.EUnavailable, "打印机“%s”已停用", p.Name)
}

// Enqueue queues already rendered bytes on printerID and wakes its worker.
// The job is durable when Enqueue returns.
func (s *Service) Enqueue(ctx context.Context, printerID string, j NewJob) (Job, error) {
	var job Job
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		job, err = s.enqueue(ctx, tx, printerID, j)
		return err
	})
	if err != nil {
		return Job{}, err
	}
	s.kick(printerID)
	return job, nil
}

// enqueue inserts the job in tx. The printer's row is read (and on MySQL
// locked) first, so jobs of one printer get consecutive seq numbers even when
// queued at the same moment.
func (s *Service) enqueue(ctx context.Context, tx *sql.Tx, printerID string, j NewJob) (Job, error) {
	switch {
	case len(j.Data) == 0:
		return Job{}, ihos.Errorf(ihos.EInvalid, "打印内容为空")
	case len(j.Data) > MaxJobBytes:
		return Job{}, ihos.Errorf(ihos.EInvalid, "打印内容过大（%d KB，最多 %d KB）", len(j.Data)>>10, MaxJobBytes>>10)
	}
	p, err := scanPrinter(tx.QueryRowContext(ctx, `SELECT `+printerCols+` FROM printers WHERE id = ? AND deleted_at IS NULL`+s.DB.ForUpdate(), printerID))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, ihos.Errorf(ihos.ENotFound, "打印机不存在或已删除")
	}
	if err != nil {
		return Job{}, err
	}
	if !p.Enabled {
		return Job{}, errDisabled(p)
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM print_jobs WHERE printer_id = ?`, printerID).Scan(&seq); err != nil {
		return Job{}, err
	}
	if j.Kind == "" {
		j.Kind = KindRaw
	}
	if j.Title == "" {
		j.Title = tickets.Title(j.Kind)
	}
	if j.Title == "" {
		j.Title = "打印任务"
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	job := Job{ID: ihos.NewID(), PrinterID: printerID, Seq: seq + 1, Kind: ihos.Truncate(j.Kind, 32), Title: ihos.Truncate(j.Title, 100),
		Status: StatusQueued, Source: ihos.Truncate(j.Source, 100), PatientRef: ihos.Truncate(j.PatientRef, 64), ReprintOf: j.reprintOf,
		Bytes: len(j.Data), NextAttemptAt: now, CreatedAt: now}
	ts := ihos.FormatTime(now)
	_, err = tx.ExecContext(ctx, `INSERT INTO print_jobs (id, printer_id, seq, kind, title, data, status, attempts, next_attempt_at, last_error, source, patient_ref, reprint_of, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, '', ?, ?, ?, ?, ?)`,
		job.ID, job.PrinterID, job.Seq, job.Kind, job.Title, j.Data, job.Status, ts, job.Source, job.PatientRef, job.ReprintOf, ts, ts)
	if err != nil {
		return Job{}, err
	}
	return job, nil
}

const jobCols = `id, printer_id, seq, kind, title, status, source, patient_ref, reprint_of, last_error, attempts, LENGTH(data), next_attempt_at, created_at, printed_at`

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var next, created string
	var printed sql.NullString
	if err := row.Scan(&j.ID, &j.PrinterID, &j.Seq, &j.Kind, &j.Title, &j.Status, &j.Source, &j.PatientRef, &j.ReprintOf,
		&j.LastError, &j.Attempts, &j.Bytes, &next, &created, &printed); err != nil {
		return j, err
	}
	j.NextAttemptAt, _ = ihos.ParseTime(next)
	j.CreatedAt, _ = ihos.ParseTime(created)
	if printed.Valid {
		j.PrintedAt, _ = ihos.ParseTime(printed.String)
	}
	return j, nil
}

// Job returns the job id.
func (s *Service) Job(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.DB.QueryRowContext(ctx, `SELECT `+jobCols+` FROM print_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, ihos.Errorf(ihos.ENotFound, "打印任务不存在")
	}
	if err != nil {
		return j, ihos.Internal(err)
	}
	return j, nil
}

// JobFilter selects jobs for Jobs.
type JobFilter struct {
	PrinterID  string
	Status     string
	PatientRef string
	Limit      int // default 50, at most 500
}

// Jobs lists jobs newest first.
func (s *Service) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	if f.Status != "" && StatusLabels[f.Status] == "" {
		return nil, ihos.Invalid(map[string]string{"status": "未知的任务状态"})
	}
	var where []string
	var args []any
	if f.PrinterID != "" {
		where, args = append(where, "printer_id = ?"), append(args, f.PrinterID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.PatientRef != "" {
		where, args = append(where, "patient_ref = ?"), append(args, f.PatientRef)
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	q := `SELECT ` + jobCols + ` FROM print_jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, seq DESC LIMIT ?`
	rows, err := s.DB.QueryContext(ctx, q, append(args, f.Limit)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	jobs := []Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return jobs, nil
}

// PatientJobs lists a patient's jobs, newest first (the kiosk's reprint list).
func (s *Service) PatientJobs(ctx context.Context, patientRef string, limit int) ([]Job, error) {
	if strings.TrimSpace(patientRef) == "" {
		return []Job{}, nil
	}
	return s.Jobs(ctx, JobFilter{PatientRef: patientRef, Limit: limit})
}

// Reprint queues a new job with the same bytes as job id, on the same printer
// (audited; authorised by the caller). Only a finished job can be reprinted:
// a queued one will still print, and an unknown one is settled with Confirm.
func (s *Service) Reprint(ctx context.Context, jobID, source string) (Job, error) {
	return s.ReprintOn(ctx, jobID, "", source)
}

// ReprintOn is Reprint on another printer (printerID "" keeps the job's own),
// for a ticket whose printer is broken. The bytes were rendered for the first
// printer's paper width.
func (s *Service) ReprintOn(ctx context.Context, jobID, printerID, source string) (Job, error) {
	var job Job
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var orig Job
		var data []byte
		err := tx.QueryRowContext(ctx, `SELECT printer_id, kind, title, status, patient_ref, data FROM print_jobs WHERE id = ?`, jobID).
			Scan(&orig.PrinterID, &orig.Kind, &orig.Title, &orig.Status, &orig.PatientRef, &data)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "打印任务不存在")
		}
		if err != nil {
			return err
		}
		switch orig.Status {
		case StatusQueued, StatusPrinting:
			return ihos.Errorf(ihos.EConflict, "该任务尚未打印完成，无需重印")
		case StatusUnknown:
			return ihos.Errorf(ihos.EConflict, "该任务待确认：请先确认是否已打印")
		}
		if printerID == "" {
			printerID = orig.PrinterID
		}
		title := orig.Title
		if !strings.HasSuffix(title, "（重印）") {
			title += "（重印）"
		}
		job, err = s.enqueue(ctx, tx, printerID, NewJob{Kind: orig.Kind, Title: title, Source: source, PatientRef: orig.PatientRef, Data: data, reprintOf: jobID})
		if err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "reprint", Resource: "print_jobs", RecordID: job.ID,
			Summary: fmt.Sprintf("重印%s（原任务 %s，来源 %s）", orig.Title, jobID, source)})
	})
	if err != nil {
		return Job{}, err
	}
	s.kick(printerID)
	return job, nil
}

// Cancel gives up on a queued or unknown job; the lane it held resumes. A job
// being sent cannot be cancelled.
func (s *Service) Cancel(ctx context.Context, jobID string) error {
	return s.decide(ctx, jobID, "cancel", func(status string) (string, string, error) {
		switch status {
		case StatusQueued, StatusUnknown:
			return StatusCancelled, "取消打印任务", nil
		case StatusPrinting:
			return "", "", ihos.Errorf(ihos.EConflict, "该任务正在打印，不能取消")
		}
		return "", "", ihos.Errorf(ihos.EConflict, "该任务已%s，不能取消", StatusLabels[status])
	})
}

// Confirm settles an unknown job after a person looked at the printer:
// printed true marks it printed, false puts it back at the head of its lane to
// be sent again.
func (s *Service) Confirm(ctx context.Context, jobID string, printed bool) error {
	action, to, summary := "confirm_reprint", StatusQueued, "确认未打印，重新打印"
	if printed {
		action, to, summary = "confirm_printed", StatusPrinted, "确认已打印"
	}
	return s.decide(ctx, jobID, action, func(status string) (string, string, error) {
		if status != StatusUnknown {
			return "", "", ihos.Errorf(ihos.EConflict, "只有待确认的任务需要确认（该任务%s）", StatusLabels[status])
		}
		return to, summary, nil
	})
}

// decide changes a job's status as a person decided, audited in the same
// transaction, and wakes its printer.
func (s *Service) decide(ctx context.Context, jobID, action string, rule func(status string) (to, summary string, err error)) error {
	var printerID string
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var status, title string
		err := tx.QueryRowContext(ctx, `SELECT printer_id, status, title FROM print_jobs WHERE id = ?`+s.DB.ForUpdate(), jobID).Scan(&printerID, &status, &title)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "打印任务不存在")
		}
		if err != nil {
			return err
		}
		to, summary, err := rule(status)
		if err != nil {
			return err
		}
		now := ihos.FormatTime(time.Now())
		q := `UPDATE print_jobs SET status = ?, next_attempt_at = ?, updated_at = ?`
		args := []any{to, now, now}
		if to == StatusPrinted {
			q += `, printed_at = ?`
			args = append(args, now)
		}
		if to == StatusQueued {
			q += `, last_error = ''`
		}
		if _, err := tx.ExecContext(ctx, q+` WHERE id = ? AND status = ?`, append(args, jobID, status)...); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: action, Resource: "print_jobs", RecordID: jobID,
			Summary: fmt.Sprintf("%s：%s（原状态 %s）", summary, title, StatusLabels[status])})
	})
	if err == nil {
		s.kick(printerID)
	}
	return err
}

// TestPrint queues a test page on printerID (audited).
func (s *Service) TestPrint(ctx context.Context, printerID, source string) (Job, error) {
	p, err := s.Printer(ctx, printerID)
	if err != nil {
		return Job{}, err
	}
	if !p.Enabled {
		return Job{}, errDisabled(p)
	}
	data, err := s.testPage(ctx, p)
	if err != nil {
		return Job{}, err
	}
	var job Job
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if job, err = s.enqueue(ctx, tx, printerID, NewJob{Kind: tickets.KindTest, Source: source, Data: data}); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "test_print", Resource: "printers", RecordID: printerID,
			Summary: "打印测试页：" + p.Name})
	})
	if err != nil {
		return Job{}, err
	}
	s.kick(printerID)
	return job, nil
}

// ActorSource is the job source for the actor in ctx: "console:<username>".
func ActorSource(ctx context.Context) string {
	if a, ok := ihos.ActorFrom(ctx); ok && a.Username != "" {
		return "console:" + a.Username
	}
	return "console"
}
