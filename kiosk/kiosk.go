// Package kiosk serves the self-service machines in the hospital lobby: full
// screen touch pages at /kiosk/ on the appliance where a patient identifies
// by resident ID number, medical insurance e-voucher QR code or visit number,
// sees today's visits, unpaid fees and recent reports from the HIS, and
// prints registration slips and reports (or reprints a lost ticket) on the
// ticket printer next to the machine.
//
// With a Cashier (pay.go) the patient also pays the unpaid fees there: ticks
// fees, chooses the medical insurance e-voucher (scanned, pre-settled, the
// split shown for confirmation) or self-pay, pays the cash part by scanning
// a QR code with their phone, and gets the receipt and, once issued, the
// e-invoice summary printed, each once per payment. A payment left unpaid
// (cancel, the QR countdown, the session ending) is cancelled.
//
// A kiosk is registered in the console (resource "kiosks", page 自助机) and
// paired once: staff generate a one-time 6-digit code, somebody types it on
// the device, and the device receives a long random token in an HttpOnly
// cookie. Every kiosk API call is authorised by that token, not by a console
// session; a disabled kiosk is refused everything. The patient's session is
// held in memory, bound to the kiosk, and ends after twice the kiosk's idle
// time (the page itself goes back to the start screen after the idle time).
//
// The pages are for old Android WebViews as well as new browsers: one plain
// ES5 script with XMLHttpRequest, no fetch, promises, arrow functions, let,
// const or template literals (kiosk_test.go checks the script for them).
package kiosk

import (
	"context"
	"sync"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// HIS is what the kiosk asks the hospital information system. The
// appliance's HIS adapter (his.HL7 or his.HTTP) implements it.
type HIS interface {
	FindPatients(ctx context.Context, id ihos.PatientIdentifier) ([]ihos.HISPatient, error)
	VisitHistory(ctx context.Context, hisPatientID string, since time.Time) ([]ihos.HISVisit, error)
	UnpaidFees(ctx context.Context, hisPatientID string) ([]ihos.HISFee, error)
	Reports(ctx context.Context, hisPatientID string, since time.Time) ([]ihos.HISReport, error)
}

// Job statuses as the kiosk understands them; Printer.JobStatus maps the
// print queue's own statuses onto these.
const (
	JobPending = "pending" // queued or printing
	JobPrinted = "printed"
	JobFailed  = "failed" // given up: the page sends the patient to a counter
)

// PrintedTicket is a ticket printed earlier for a patient, which the kiosk
// offers to print again.
type PrintedTicket struct {
	JobID     string    `json:"job_id"`
	Kind      string    `json:"kind"`  // a tickets.Kind… constant
	Title     string    `json:"title"` // e.g. "检验报告 血常规"
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// Ticket is a ticket to print: tickets.Registration, tickets.Report … (the
// same method set as tickets.Ticket, so the printing adapter passes it on as
// it is).
type Ticket interface{ TicketKind() string }

// Printer queues tickets on the hospital's ticket printers. The appliance
// adapts package printing to it; patientRef is the HIS patient id, which
// PatientJobs finds the patient's earlier tickets by.
type Printer interface {
	Print(ctx context.Context, printerID string, t Ticket, title, source, patientRef string) (jobID string, err error)
	// JobStatus returns JobPending, JobPrinted or JobFailed and the printer's
	// last error (shown while a job waits, e.g. "打印机缺纸").
	JobStatus(ctx context.Context, jobID string) (status, lastError string, err error)
	// PatientJobs lists the patient's tickets, newest first.
	PatientJobs(ctx context.Context, patientRef string, limit int) ([]PrintedTicket, error)
	// Reprint queues the same ticket again and returns the new job.
	Reprint(ctx context.Context, jobID, source string) (newJobID string, err error)
}

// Vouchers resolves the QR code of a medical insurance e-voucher (医保电子凭证,
// the ecToken the national platform's 1101 query accepts) to the insured
// person's ID number and name.
type Vouchers interface {
	Resolve(ctx context.Context, qr string) (idNumber, name string, err error)
}

// Service serves the kiosk pages and API and the console page.
type Service struct {
	DB       *sqldb.DB
	HIS      HIS
	Printer  Printer  // nil: printing is unavailable
	Vouchers Vouchers // nil: the e-voucher path tells the patient to use another
	// Cashier takes payments of the unpaid fees; nil: the kiosk shows them
	// and sends the patient to a counter or their phone.
	Cashier Cashier
	// PayWindow is how long a cash QR code stays on the screen before the
	// kiosk cancels the payment; 0 means 3 minutes.
	PayWindow time.Duration
	Hospital  string // the hospital's name in the header of every screen
	Secure    bool   // mark the device cookie Secure (appliance served over HTTPS)

	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time

	mu       sync.Mutex
	sessions map[string]*session    // by kiosk id
	codes    map[string]pendingCode // by kiosk id: codes shown in the console until they expire
	failures map[string][]time.Time // by client IP: recent wrong pairing codes
	seen     map[string]time.Time   // by kiosk id: last stored last_seen_at
}

// New returns a Service; h must not be nil, p and v may be.
func New(db *sqldb.DB, h HIS, p Printer, v Vouchers, hospital string) *Service {
	return &Service{DB: db, HIS: h, Printer: p, Vouchers: v, Hospital: hospital}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
