package hissim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// schema is the simulator's own database. It is not the platform's: a real
// HIS keeps its own data, and so does its stand-in. Times are stored UTC as
// fixed-width RFC 3339 text (sortable); due and retry times as Unix
// milliseconds.
const schema = `
CREATE TABLE IF NOT EXISTS patients (
	his_id         TEXT PRIMARY KEY,
	name           TEXT NOT NULL,
	sex            TEXT NOT NULL,
	birth_date     TEXT NOT NULL,           -- yyyyMMdd
	id_number      TEXT NOT NULL DEFAULT '',
	phone          TEXT NOT NULL DEFAULT '',
	insurance_card TEXT NOT NULL DEFAULT '',
	created_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_id_number ON patients(id_number);
CREATE INDEX IF NOT EXISTS patients_insurance_card ON patients(insurance_card);

CREATE TABLE IF NOT EXISTS visits (
	visit_no        TEXT PRIMARY KEY,       -- the HIS visit number
	his_id          TEXT NOT NULL,
	platform_visit  TEXT NOT NULL DEFAULT '', -- PV1-19 of an online visit the platform registered
	department_code TEXT NOT NULL,
	department_name TEXT NOT NULL,
	doctor_code     TEXT NOT NULL DEFAULT '',
	doctor_name     TEXT NOT NULL DEFAULT '',
	service         TEXT NOT NULL DEFAULT '', -- PV1-10: ONLINE for online visits
	visited_at      TEXT NOT NULL,
	control_id      TEXT NOT NULL DEFAULT '',
	queue_no        TEXT NOT NULL DEFAULT '', -- ZPV-1: today's registrations
	time_slot       TEXT NOT NULL DEFAULT '', -- ZPV-2: "08:00-08:30"
	fee_fen         INTEGER NOT NULL DEFAULT 0, -- ZPV-3: registration fee
	status          TEXT NOT NULL DEFAULT 'seen' -- ZPV-4: registered, seen, cancelled
);
CREATE INDEX IF NOT EXISTS visits_patient ON visits(his_id, visited_at);
CREATE UNIQUE INDEX IF NOT EXISTS visits_platform ON visits(platform_visit) WHERE platform_visit <> '';

CREATE TABLE IF NOT EXISTS diagnoses (
	visit_no     TEXT NOT NULL,
	seq          INTEGER NOT NULL,
	code         TEXT NOT NULL,
	name         TEXT NOT NULL,
	type         TEXT NOT NULL DEFAULT 'F',
	diagnosed_at TEXT NOT NULL,
	PRIMARY KEY (visit_no, seq)
);

CREATE TABLE IF NOT EXISTS fees (
	fee_id          TEXT PRIMARY KEY,       -- the HIS fee id
	his_id          TEXT NOT NULL,
	visit_no        TEXT NOT NULL DEFAULT '',
	platform_fee_id TEXT NOT NULL DEFAULT '', -- FT1-2 of a fee the platform posted
	type            TEXT NOT NULL DEFAULT 'CG',
	item_code       TEXT NOT NULL,
	item_name       TEXT NOT NULL,
	quantity        TEXT NOT NULL,
	amount_fen      INTEGER NOT NULL,
	department_code TEXT NOT NULL DEFAULT '',
	doctor_code     TEXT NOT NULL DEFAULT '',
	doctor_name     TEXT NOT NULL DEFAULT '',
	filler_order_no TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL,           -- unpaid, paid, posted
	created_at      TEXT NOT NULL,
	control_id      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS fees_patient ON fees(his_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS fees_platform ON fees(platform_fee_id) WHERE platform_fee_id <> '';

CREATE TABLE IF NOT EXISTS catalog (
	code         TEXT PRIMARY KEY,
	kind         TEXT NOT NULL,             -- DRUG, EXAM, LAB
	ord          INTEGER NOT NULL,
	name         TEXT NOT NULL,
	spec         TEXT NOT NULL DEFAULT '',
	unit         TEXT NOT NULL DEFAULT '',
	price_fen    INTEGER NOT NULL,
	stock        INTEGER,                   -- drugs only
	flags        TEXT NOT NULL DEFAULT '',  -- space separated
	category     TEXT NOT NULL,
	active       INTEGER NOT NULL DEFAULT 1,
	specimen     TEXT NOT NULL DEFAULT '',
	manufacturer TEXT NOT NULL DEFAULT '',
	panel        TEXT NOT NULL DEFAULT '',  -- labs: JSON analyte definitions
	report       TEXT NOT NULL DEFAULT ''   -- exams: report template name
);
CREATE INDEX IF NOT EXISTS catalog_kind ON catalog(kind, ord);

CREATE TABLE IF NOT EXISTS orders (
	placer_order_no TEXT PRIMARY KEY,
	filler_order_no TEXT NOT NULL UNIQUE,
	kind            TEXT NOT NULL,          -- DRUG, LAB, EXAM
	his_id          TEXT NOT NULL,
	visit_no        TEXT NOT NULL DEFAULT '', -- the platform's visit number (PV1-19)
	code            TEXT NOT NULL,
	name            TEXT NOT NULL,
	quantity        TEXT NOT NULL DEFAULT '',
	unit            TEXT NOT NULL DEFAULT '',
	dose            TEXT NOT NULL DEFAULT '',
	dose_unit       TEXT NOT NULL DEFAULT '',
	frequency       TEXT NOT NULL DEFAULT '',
	route           TEXT NOT NULL DEFAULT '',
	specimen        TEXT NOT NULL DEFAULT '',
	clinical_info   TEXT NOT NULL DEFAULT '',
	doctor_code     TEXT NOT NULL DEFAULT '',
	doctor_name     TEXT NOT NULL DEFAULT '',
	department_code TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL,          -- IP, CM, CA
	ordered_at      TEXT NOT NULL,
	result_due      INTEGER,                -- Unix ms; NULL when no result is to come
	control_id      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_due ON orders(result_due) WHERE result_due IS NOT NULL;

CREATE TABLE IF NOT EXISTS documents (
	document_no  TEXT PRIMARY KEY,
	version      INTEGER NOT NULL,
	his_id       TEXT NOT NULL,
	visit_no     TEXT NOT NULL DEFAULT '',
	doc_type     TEXT NOT NULL,
	status       TEXT NOT NULL,
	activity_at  TEXT NOT NULL DEFAULT '',
	content_type TEXT NOT NULL DEFAULT '',
	content      BLOB,
	received_at  TEXT NOT NULL,
	control_id   TEXT NOT NULL
);

-- The dedup set: one row per message acted on, with the answer it got.
CREATE TABLE IF NOT EXISTS messages (
	control_id  TEXT PRIMARY KEY,
	type        TEXT NOT NULL,
	via         TEXT NOT NULL,              -- mllp or http
	ack_code    TEXT NOT NULL,
	ack_text    TEXT NOT NULL DEFAULT '',
	answer      BLOB,                       -- the encoded ACK, or the JSON body
	http_status INTEGER NOT NULL DEFAULT 0,
	received_at TEXT NOT NULL
);

-- Every arrival, duplicates and queries included, in order.
CREATE TABLE IF NOT EXISTS arrivals (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	control_id     TEXT NOT NULL,
	type           TEXT NOT NULL,
	via            TEXT NOT NULL,
	patient_his_id TEXT NOT NULL DEFAULT '',
	placer         TEXT NOT NULL DEFAULT '', -- space separated
	duplicate      INTEGER NOT NULL DEFAULT 0,
	ack_code       TEXT NOT NULL DEFAULT '',
	at             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS arrivals_type ON arrivals(type, seq);

CREATE TABLE IF NOT EXISTS results (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	placer_order_no TEXT NOT NULL UNIQUE,
	filler_order_no TEXT NOT NULL,
	his_id          TEXT NOT NULL,
	control_id      TEXT NOT NULL,          -- MSH-10 of the ORU, fixed for its resends
	service_code    TEXT NOT NULL,
	service_name    TEXT NOT NULL,
	order_status    TEXT NOT NULL,
	result_status   TEXT NOT NULL,
	reported_at     TEXT NOT NULL,
	observations    TEXT NOT NULL,          -- JSON
	message         BLOB NOT NULL,          -- the encoded ORU^R01
	push_state      TEXT NOT NULL,          -- pending, sent, rejected, local
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_try        INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS results_pending ON results(push_state, seq);

-- Reports of lab and exam orders placed at the hospital's own counters (the
-- demo data); results of the platform's orders are in results.
CREATE TABLE IF NOT EXISTS reports (
	report_no       TEXT PRIMARY KEY,       -- the filler order number
	his_id          TEXT NOT NULL,
	kind            TEXT NOT NULL,          -- LAB, EXAM
	visit_no        TEXT NOT NULL DEFAULT '',
	service_code    TEXT NOT NULL,
	service_name    TEXT NOT NULL,
	department_code TEXT NOT NULL DEFAULT '', -- the ordering department
	department_name TEXT NOT NULL DEFAULT '',
	doctor_code     TEXT NOT NULL DEFAULT '', -- the ordering doctor
	doctor_name     TEXT NOT NULL DEFAULT '',
	reporter        TEXT NOT NULL DEFAULT '', -- the reporting doctor
	result_status   TEXT NOT NULL DEFAULT 'F',
	reported_at     TEXT NOT NULL,
	observations    TEXT NOT NULL           -- JSON
);
CREATE INDEX IF NOT EXISTS reports_patient ON reports(his_id, reported_at);

CREATE TABLE IF NOT EXISTS counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
`

// openDB opens (creating) the simulator's database: WAL, synchronous=FULL,
// write transactions that take the write lock at BEGIN.
func openDB(ctx context.Context, dir string) (*sql.DB, error) {
	if dir == "" {
		return nil, errors.New("hissim: Config.DataDir is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("hissim: data dir: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + filepath.ToSlash(filepath.Join(dir, "his-sim.db")) + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("hissim: open database: %w", err)
	}
	// One connection: writers queue in Go instead of sleeping in SQLite's busy
	// handler; at four connections it stored a third as many messages per second.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("hissim: create schema: %w", err)
	}
	if err := upgrade(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("hissim: upgrade schema: %w", err)
	}
	return db, nil
}

// upgrade adds the columns later versions added to a database an earlier
// version created (CREATE TABLE IF NOT EXISTS leaves an old table as it was).
func upgrade(ctx context.Context, db *sql.DB) error {
	have := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('visits')`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range []struct{ name, def string }{
		{"queue_no", `TEXT NOT NULL DEFAULT ''`},
		{"time_slot", `TEXT NOT NULL DEFAULT ''`},
		{"fee_fen", `INTEGER NOT NULL DEFAULT 0`},
		{"status", `TEXT NOT NULL DEFAULT 'seen'`},
	} {
		if have[c.name] {
			continue
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE visits ADD COLUMN `+c.name+` `+c.def); err != nil {
			return err
		}
	}
	return nil
}

// inTx runs fn in a write transaction.
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// nextNumber increments and returns a named counter.
func nextNumber(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `INSERT INTO counters (name, value) VALUES (?, 1)
		ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`, name).Scan(&n)
	return n, err
}

// nextID returns prefix followed by the next value of the counter of that
// prefix, zero-padded to width digits: "MZ00000123".
func nextID(ctx context.Context, tx *sql.Tx, prefix string, width int) (string, error) {
	n, err := nextNumber(ctx, tx, prefix)
	if err != nil {
		return "", err
	}
	return padded(prefix, n, width), nil
}

func padded(prefix string, n int64, width int) string {
	s := strconv.FormatInt(n, 10)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return prefix + s
}

// Time helpers. beijing is UTC+8 (no daylight saving since 1991), a fixed zone
// so no time zone database is needed.
var beijing = time.FixedZone("CST", 8*3600)

const dbTime = "2006-01-02T15:04:05.000Z"

func fmtDB(t time.Time) string { return t.UTC().Format(dbTime) }

func parseDB(s string) time.Time {
	t, err := time.Parse(dbTime, s)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s)
	}
	return t
}

// rfc3339 formats t for JSON answers: Beijing time with its offset.
func rfc3339(t time.Time) string { return t.In(beijing).Format(time.RFC3339) }

// Money: yuan with two decimals in HL7, fen everywhere else.

func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// parseYuan reads "12.5", "12.50", "-3", "+0.05" as fen; more than two
// non-zero decimals is an error (money is never rounded silently).
func parseYuan(s string) (int64, error) {
	bad := fmt.Errorf("金额格式不正确：%q", s)
	s = strings.TrimSpace(s)
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else {
		s = strings.TrimPrefix(s, "+")
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if whole == "" || len(frac) > 2 || len(whole) > 15 {
		return 0, bad
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, bad
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	fen := w*100 + f
	if neg {
		fen = -fen
	}
	return fen, nil
}
