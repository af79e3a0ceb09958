// Package visits is the online visit (在线问诊, issue 8) and its messages: a
// visit opened from a paid booking waits in its doctor's queue, is accepted by
// that doctor, and ends (or is cancelled while it waits); patient and doctor
// talk in it with text, image and voice messages, numbered per visit.
//
// The rules live here, not in the HTTP layer: only the visit's own patient and
// doctor act on it, every status change is checked against the state machine
// and recorded in an append-only history, and nothing is ever deleted — a
// message is immutable (a correction is a new message). Every change commits
// with its sync capture (the appliance's console shows the visit records) and
// then wakes the listeners of the visit through the Bus (hub.go), which push it
// to the parties' SSE streams (stream.go).
package visits

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	stdsync "sync"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Visit types.
const (
	TypeText  = "text"  // 图文问诊
	TypeVoice = "voice" // 语音问诊
	TypeVideo = "video" // 视频问诊
)

// TypeLabels are the visit types as patients see them.
var TypeLabels = map[string]string{TypeText: "图文问诊", TypeVoice: "语音问诊", TypeVideo: "视频问诊"}

// Visit statuses: waiting → in_progress → ended, or waiting → cancelled.
const (
	StatusWaiting    = "waiting"
	StatusInProgress = "in_progress"
	StatusEnded      = "ended"
	StatusCancelled  = "cancelled"
)

// StatusLabels are the statuses as patients and doctors see them.
var StatusLabels = map[string]string{StatusWaiting: "候诊中", StatusInProgress: "问诊中", StatusEnded: "已结束", StatusCancelled: "已取消"}

// Party roles.
const (
	RolePatient = "patient"
	RoleDoctor  = "doctor"
	RoleSystem  = "system" // the service itself: opening from a booking, timeouts, refunds
)

// Party is who acts on a visit: a patient account, a doctor (staff id), or
// the system.
type Party struct {
	Role string `json:"role"`
	ID   string `json:"id"`
}

var roleLabels = map[string]string{RolePatient: "患者", RoleDoctor: "医生", RoleSystem: "系统"}

// System is the party of changes no person made.
var System = Party{Role: RoleSystem, ID: "system"}

// Message kinds.
const (
	KindText  = "text"
	KindImage = "image"
	KindVoice = "voice"
)

// Events of system messages: what happened to the visit.
const (
	EventOpened    = "opened"
	EventAccepted  = "accepted"
	EventEnded     = "ended"
	EventCancelled = "cancelled"
)

// Visit is one online visit.
type Visit struct {
	ID           string    `json:"id"`
	HospitalID   string    `json:"hospital_id"`
	BookingID    string    `json:"booking_id"`
	PatientID    string    `json:"patient_id"`
	DoctorID     string    `json:"doctor_id"`
	DepartmentID string    `json:"department_id"`
	Type         string    `json:"type"`
	TypeLabel    string    `json:"type_label"`
	Status       string    `json:"status"`
	StatusLabel  string    `json:"status_label"`
	BookedAt     time.Time `json:"booked_at"`
	AcceptedAt   time.Time `json:"accepted_at,omitzero"`
	EndedAt      time.Time `json:"ended_at,omitzero"`
	LastSeq      int64     `json:"last_seq"`
	// QueuePosition is 1 for the next patient the doctor sees; set by Get
	// for a waiting visit, 0 otherwise.
	QueuePosition int       `json:"queue_position,omitempty"`
	Version       int64     `json:"version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Message is one message of a visit. Seq numbers a visit's messages 1, 2, …
// with no gaps, in commit order.
type Message struct {
	ID           string    `json:"id"`
	VisitID      string    `json:"visit_id"`
	Seq          int64     `json:"seq"`
	SenderRole   string    `json:"sender_role"`
	SenderID     string    `json:"sender_id"`
	Kind         string    `json:"kind"`
	Event        string    `json:"event,omitempty"` // system messages: opened, accepted, ended, cancelled
	Body         string    `json:"body,omitempty"`
	AttachmentID string    `json:"attachment_id,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	// Feed orders messages across visits, for a party's own stream.
	Feed int64 `json:"feed"`
}

// Entities declares the visit data the appliance receives (cloud-owned).
// last_seq and feed_seq are the cloud's own counters.
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "visits", Table: "visits", Owner: sync.Cloud, Local: []string{"last_seq"}},
		{Name: "visit_events", Table: "visit_events", Owner: sync.Cloud},
		{Name: "visit_messages", Table: "visit_messages", Owner: sync.Cloud, Local: []string{"feed_seq"}},
	}
}

// Service is the visit service. Other packages call it (the booking service
// opens a visit once the booking is paid); cloud/visits.go puts HTTP in front
// of it.
type Service struct {
	DB *sqldb.DB
	// Capture records replicated rows for the appliance inside a transaction
	// (sync.Replica.Capture with hospital ""); nil without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	// Bus carries the notice of every change to the listeners of every cloud
	// process (a *Hub alone in a single process, NATSBus across several);
	// nil: the Hub alone (a single process).
	Bus Bus
	// Hub holds this process's listeners: the streams (stream.go) register
	// with it, and the Bus delivers to it.
	Hub *Hub
	// Heartbeat is how often an idle stream sends a comment line and rereads
	// the database (default 15 s).
	Heartbeat time.Duration
	// Dir is where attachments are stored (a directory under the data dir).
	Dir string
	// MaxAttachment caps an upload in bytes (default 10 MiB).
	MaxAttachment int64
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time
	// Extra, when set, adds events another service keeps to a party's own
	// stream (GET /api/events; the message center's notices, package
	// notices). It is called once per stream, after the stream listens, and
	// returns a fill that runs after the stream's messages at every wake-up
	// and heartbeat, writing events through emit. They carry no id (they are
	// not in the Last-Event-ID sequence); the other service keeps its own
	// cursor. A notice for the party on the Bus wakes the stream.
	Extra func(r *http.Request, by Party) func(ctx context.Context, emit func(event string, v any)) error

	stmts stdsync.Map // query text → *sql.Stmt: the streams' reads, prepared once
}

// query runs one of the streams' frequent reads as a prepared statement:
// parsing the SQL was a tenth of a delivered message's CPU on SQLite.
func (s *Service) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, ok := s.stmts.Load(query)
	if !ok {
		prepared, err := s.DB.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		if st, ok = s.stmts.LoadOrStore(query, prepared); ok {
			prepared.Close()
		}
	}
	return st.(*sql.Stmt).QueryContext(ctx, args...)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) capture(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
	if s.Capture == nil {
		return nil
	}
	return s.Capture(ctx, tx, refs...)
}

func (s *Service) committed(n Notice) {
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
	switch {
	case s.Bus != nil:
		s.Bus.Publish(n)
	case s.Hub != nil:
		s.Hub.Deliver(n)
	}
}

var errNotFound = ihos.Errorf(ihos.ENotFound, "问诊不存在")

// VisitSpec is what a paid booking opens.
type VisitSpec struct {
	HospitalID   string
	BookingID    string
	PatientID    string
	DoctorID     string
	DepartmentID string
	Type         string    // TypeText, TypeVoice, TypeVideo
	BookedAt     time.Time // when the booking was made: the visit's place in the queue
	// FirstMessage, if set, is the patient's first message (the condition
	// they gave when booking), written with the visit so it is there once.
	FirstMessage string
}

func validateSpec(v VisitSpec) error {
	f := map[string]string{}
	check := func(field, value, msg string) {
		if value == "" || len(value) > 36 {
			f[field] = msg
		}
	}
	check("hospital_id", v.HospitalID, "医院编号无效")
	check("booking_id", v.BookingID, "预约编号无效")
	check("patient_id", v.PatientID, "患者编号无效")
	check("doctor_id", v.DoctorID, "医生编号无效")
	if len(v.DepartmentID) > 36 {
		f["department_id"] = "科室编号无效"
	}
	if _, ok := TypeLabels[v.Type]; !ok {
		f["type"] = "问诊类型无效，应为图文、语音或视频"
	}
	if v.BookedAt.IsZero() {
		f["booked_at"] = "缺少预约时间"
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	return nil
}

// Open opens the visit of a paid booking: it joins the doctor's queue. A
// booking opens one visit only; opening it again returns that visit.
func (s *Service) Open(ctx context.Context, spec VisitSpec) (*Visit, error) {
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	now := s.now()
	v := &Visit{ID: ihos.NewID(), HospitalID: spec.HospitalID, BookingID: spec.BookingID, PatientID: spec.PatientID,
		DoctorID: spec.DoctorID, DepartmentID: spec.DepartmentID, Type: spec.Type, Status: StatusWaiting,
		BookedAt: spec.BookedAt.UTC().Truncate(time.Microsecond), Version: 1, CreatedAt: now, UpdatedAt: now}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := s.DB.TxExec(ctx, tx, `INSERT INTO visits (id, hospital_id, booking_id, patient_id, doctor_id, department_id, visit_type,
			status, booked_at, last_seq, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, ?, ?)`,
			v.ID, v.HospitalID, v.BookingID, v.PatientID, v.DoctorID, v.DepartmentID, v.Type, v.Status,
			ihos.FormatTime(v.BookedAt), ihos.FormatTime(now), ihos.FormatTime(now))
		if err != nil {
			return err
		}
		if err := s.record(ctx, tx, v, "", System, EventOpened, "患者已进入候诊队列，请耐心等待医生接诊"); err != nil {
			return err
		}
		if spec.FirstMessage != "" {
			m := &Message{VisitID: v.ID, SenderRole: RolePatient, SenderID: v.PatientID, Kind: KindText, Body: spec.FirstMessage}
			if err := s.insertMessage(ctx, tx, v, m); err != nil {
				return err
			}
			if err := s.capture(ctx, tx, sync.Ref{Entity: "visit_messages", ID: m.ID}); err != nil {
				return err
			}
			if err := s.assignFeed(ctx, tx, m); err != nil {
				return err
			}
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: EventOpened, Resource: "visits", RecordID: v.ID,
			Summary: fmt.Sprintf("预约 %s 的%s进入候诊（患者 %s，医生 %s）", v.BookingID, TypeLabels[v.Type], v.PatientID, v.DoctorID)})
	})
	if sqldb.IsUniqueViolation(err) {
		return s.ByBooking(ctx, spec.BookingID)
	}
	if err != nil {
		return nil, err
	}
	s.committed(Notice{Visit: v.ID, Patient: v.PatientID, Doctor: v.DoctorID, Queue: true})
	return label(v), nil
}

// ByBooking returns the visit a booking opened (ENotFound when none).
func (s *Service) ByBooking(ctx context.Context, booking string) (*Visit, error) {
	v, err := scanVisit(s.DB.QueryRowContext(ctx, `SELECT `+visitCols+` FROM visits WHERE booking_id = ?`, booking))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return v, err
}

// Accept starts the visit: only its own doctor may, and only while it waits.
func (s *Service) Accept(ctx context.Context, by Party, id string) (*Visit, error) {
	return s.transition(ctx, by, id, EventAccepted, "", func(v *Visit) error {
		if by.Role != RoleDoctor && by.Role != RoleSystem {
			return ihos.Errorf(ihos.EForbidden, "只有医生可以接诊")
		}
		if by.Role == RoleDoctor && by.ID != v.DoctorID {
			return ihos.Errorf(ihos.EForbidden, "这不是您的问诊，不能接诊")
		}
		switch v.Status {
		case StatusWaiting:
			return nil
		case StatusInProgress:
			return ihos.Errorf(ihos.EConflict, "该问诊已接诊，正在进行中")
		case StatusEnded:
			return ihos.Errorf(ihos.EConflict, "该问诊已结束，不能接诊")
		default:
			return ihos.Errorf(ihos.EConflict, "该问诊已取消，不能接诊")
		}
	})
}

// End ends a visit in progress: its doctor, or the system (a visit that ran
// past its time).
func (s *Service) End(ctx context.Context, by Party, id, reason string) (*Visit, error) {
	return s.transition(ctx, by, id, EventEnded, reason, func(v *Visit) error {
		if by.Role != RoleDoctor && by.Role != RoleSystem {
			return ihos.Errorf(ihos.EForbidden, "只有接诊医生可以结束问诊")
		}
		if by.Role == RoleDoctor && by.ID != v.DoctorID {
			return ihos.Errorf(ihos.EForbidden, "这不是您的问诊，不能结束")
		}
		switch v.Status {
		case StatusInProgress:
			return nil
		case StatusWaiting:
			return ihos.Errorf(ihos.EConflict, "医生尚未接诊，不能结束问诊")
		case StatusEnded:
			return ihos.Errorf(ihos.EConflict, "该问诊已结束")
		default:
			return ihos.Errorf(ihos.EConflict, "该问诊已取消，不能结束")
		}
	})
}

// Cancel cancels a visit that still waits: its patient, its doctor (who
// declines it, with a reason) or the system. Refunding the fee is the booking's
// business.
func (s *Service) Cancel(ctx context.Context, by Party, id, reason string) (*Visit, error) {
	return s.transition(ctx, by, id, EventCancelled, reason, func(v *Visit) error {
		switch {
		case by.Role == RoleSystem:
		case by.Role == RolePatient && by.ID == v.PatientID:
		case by.Role == RoleDoctor && by.ID == v.DoctorID:
		default:
			return ihos.Errorf(ihos.EForbidden, "这不是您的问诊，不能取消")
		}
		switch v.Status {
		case StatusWaiting:
			return nil
		case StatusInProgress:
			return ihos.Errorf(ihos.EConflict, "医生已接诊，不能取消问诊")
		case StatusEnded:
			return ihos.Errorf(ihos.EConflict, "该问诊已结束，不能取消")
		default:
			return ihos.Errorf(ihos.EConflict, "该问诊已取消")
		}
	})
}

// transitions maps an event to the status it leads to and the system
// message the parties see.
var transitions = map[string]struct{ to, text string }{
	EventAccepted:  {StatusInProgress, "医生已接诊，问诊开始"},
	EventEnded:     {StatusEnded, "问诊已结束"},
	EventCancelled: {StatusCancelled, "问诊已取消"},
}

// transition moves visit id by event after check allows it, in one
// transaction with its history entry, its system message and its audit record.
func (s *Service) transition(ctx context.Context, by Party, id, event, reason string, check func(*Visit) error) (*Visit, error) {
	t := transitions[event]
	reason = ihos.Truncate(strings.TrimSpace(reason), 200)
	var v *Visit
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if v, err = s.lock(ctx, tx, id); err != nil {
			return err
		}
		if err := check(v); err != nil {
			return err
		}
		from := v.Status
		now := s.now()
		v.Status, v.UpdatedAt = t.to, now
		v.Version++
		switch t.to {
		case StatusInProgress:
			v.AcceptedAt = now
		case StatusEnded, StatusCancelled:
			v.EndedAt = now
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE visits SET status = ?, accepted_at = ?, ended_at = ?, version = ?, updated_at = ? WHERE id = ?`,
			v.Status, nullTime(v.AcceptedAt), nullTime(v.EndedAt), v.Version, ihos.FormatTime(now), v.ID); err != nil {
			return err
		}
		text := t.text
		if reason != "" {
			text += "：" + reason
		}
		if err := s.record(ctx, tx, v, from, by, event, text); err != nil {
			return err
		}
		summary := fmt.Sprintf("问诊状态：%s → %s（%s %s）", StatusLabels[from], StatusLabels[v.Status], roleLabels[by.Role], by.ID)
		if reason != "" {
			summary += "，原因：" + reason
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: event, Resource: "visits", RecordID: v.ID, Summary: summary})
	})
	if err != nil {
		return nil, err
	}
	s.committed(Notice{Visit: v.ID, Patient: v.PatientID, Doctor: v.DoctorID, Queue: true})
	return label(v), nil
}

// record writes v's history entry from → v.Status and the system message
// that tells the parties, and captures them with the visit.
func (s *Service) record(ctx context.Context, tx *sql.Tx, v *Visit, from string, by Party, event, text string) error {
	evID := ihos.NewID()
	now := ihos.FormatTime(s.now())
	if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO visit_events (id, hospital_id, visit_id, from_status, to_status, actor_role, actor_id, reason, at, version, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
		evID, v.HospitalID, v.ID, from, v.Status, by.Role, ihos.Truncate(by.ID, 64), ihos.Truncate(text, 200), now, now); err != nil {
		return err
	}
	m := &Message{VisitID: v.ID, SenderRole: RoleSystem, SenderID: "system", Kind: KindText, Event: event, Body: text}
	if err := s.insertMessage(ctx, tx, v, m); err != nil {
		return err
	}
	if err := s.capture(ctx, tx, sync.Ref{Entity: "visits", ID: v.ID}, sync.Ref{Entity: "visit_events", ID: evID},
		sync.Ref{Entity: "visit_messages", ID: m.ID}); err != nil {
		return err
	}
	return s.assignFeed(ctx, tx, m)
}

// insertMessage numbers m with the visit's next seq and writes it; its feed
// position comes last (assignFeed). v must be locked in tx (lock, or just
// inserted).
func (s *Service) insertMessage(ctx context.Context, tx *sql.Tx, v *Visit, m *Message) error {
	v.LastSeq++
	m.ID, m.Seq, m.CreatedAt = ihos.NewID(), v.LastSeq, s.now()
	if _, err := s.DB.TxExec(ctx, tx, `UPDATE visits SET last_seq = ? WHERE id = ?`, v.LastSeq, v.ID); err != nil {
		return err
	}
	now := ihos.FormatTime(m.CreatedAt)
	_, err := s.DB.TxExec(ctx, tx, `INSERT INTO visit_messages (id, hospital_id, visit_id, seq, patient_id, doctor_id, sender_role, sender_id,
		kind, event, body, attachment_id, feed_seq, created_at, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
		m.ID, v.HospitalID, v.ID, m.Seq, v.PatientID, v.DoctorID, m.SenderRole, ihos.Truncate(m.SenderID, 64),
		m.Kind, m.Event, m.Body, m.AttachmentID, 0, now, now)
	return err
}

// assignFeed gives m the next feed position. The visit_feed row stays locked
// until the commit, so it is taken as the last statement before it: every
// message commit waits for the one before it from here on (on MariaDB; SQLite
// has one writer anyway).
func (s *Service) assignFeed(ctx context.Context, tx *sql.Tx, m *Message) error {
	var feed int64
	if err := s.DB.TxQueryRow(ctx, tx, `SELECT value FROM visit_feed WHERE name = 'feed'`+s.DB.ForUpdate()).Scan(&feed); err != nil {
		return fmt.Errorf("visits: feed: %w", err)
	}
	m.Feed = feed + 1
	if _, err := s.DB.TxExec(ctx, tx, `UPDATE visit_feed SET value = ? WHERE name = 'feed'`, m.Feed); err != nil {
		return err
	}
	_, err := s.DB.TxExec(ctx, tx, `UPDATE visit_messages SET feed_seq = ? WHERE id = ?`, m.Feed, m.ID)
	return err
}

// MessageInput is a message a party posts: text with Body, or an image or
// voice clip uploaded before (Upload) with AttachmentID.
type MessageInput struct {
	Kind         string `json:"kind"`
	Body         string `json:"body"`
	AttachmentID string `json:"attachment_id"`
}

// MaxText is the longest text message, in characters.
const MaxText = 2000

// Post adds a message from the visit's patient or doctor. The patient may
// write while waiting (to describe the condition); the doctor once the visit
// is accepted; nobody after it ended.
func (s *Service) Post(ctx context.Context, by Party, visitID string, in MessageInput) (*Message, error) {
	m := &Message{VisitID: visitID, SenderRole: by.Role, SenderID: by.ID, Kind: in.Kind}
	switch in.Kind {
	case KindText:
		m.Body = strings.TrimSpace(in.Body)
		if m.Body == "" {
			return nil, ihos.Invalid(map[string]string{"body": "消息内容不能为空"})
		}
		if utf8.RuneCountInString(m.Body) > MaxText {
			return nil, ihos.Invalid(map[string]string{"body": fmt.Sprintf("消息不能超过 %d 字", MaxText)})
		}
	case KindImage, KindVoice:
		if in.AttachmentID == "" {
			return nil, ihos.Invalid(map[string]string{"attachment_id": "请先上传图片或语音"})
		}
		m.AttachmentID = in.AttachmentID
	default:
		return nil, ihos.Invalid(map[string]string{"kind": "消息类型无效，应为文字、图片或语音"})
	}
	var v *Visit
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if v, err = s.lock(ctx, tx, visitID); err != nil {
			return err
		}
		if err := mayPost(by, v); err != nil {
			return err
		}
		if m.AttachmentID != "" {
			var kind, role, uploader string
			err := s.DB.TxQueryRow(ctx, tx, `SELECT kind, uploader_role, uploader_id FROM visit_attachments WHERE id = ? AND visit_id = ?`,
				m.AttachmentID, v.ID).Scan(&kind, &role, &uploader)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && (role != by.Role || uploader != by.ID)) {
				return ihos.Invalid(map[string]string{"attachment_id": "附件不存在"})
			}
			if err != nil {
				return err
			}
			if kind != m.Kind {
				return ihos.Invalid(map[string]string{"attachment_id": "附件类型与消息类型不符"})
			}
		}
		if err := s.insertMessage(ctx, tx, v, m); err != nil {
			return err
		}
		if err := s.capture(ctx, tx, sync.Ref{Entity: "visit_messages", ID: m.ID}); err != nil {
			return err
		}
		return s.assignFeed(ctx, tx, m)
	})
	if err != nil {
		return nil, err
	}
	s.committed(Notice{Visit: v.ID, Patient: v.PatientID, Doctor: v.DoctorID})
	return m, nil
}

// mayPost is the rule of who may write in v now.
func mayPost(by Party, v *Visit) error {
	if err := party(by, v); err != nil {
		return err
	}
	switch v.Status {
	case StatusEnded:
		return ihos.Errorf(ihos.EConflict, "问诊已结束，不能再发送消息")
	case StatusCancelled:
		return ihos.Errorf(ihos.EConflict, "问诊已取消，不能再发送消息")
	case StatusWaiting:
		if by.Role == RoleDoctor {
			return ihos.Errorf(ihos.EConflict, "请先接诊，再给患者发消息")
		}
	}
	return nil
}

// party checks that by is v's patient or doctor (or the system).
func party(by Party, v *Visit) error {
	switch {
	case by.Role == RoleSystem:
		return nil
	case by.Role == RolePatient && by.ID != "" && by.ID == v.PatientID:
		return nil
	case by.Role == RoleDoctor && by.ID != "" && by.ID == v.DoctorID:
		return nil
	}
	return ihos.Errorf(ihos.EForbidden, "您不是该问诊的患者或医生，无权查看或操作")
}

// Get returns the visit, with its queue position while it waits.
func (s *Service) Get(ctx context.Context, by Party, id string) (*Visit, error) {
	v, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := party(by, v); err != nil {
		return nil, err
	}
	if v.Status == StatusWaiting {
		if v.QueuePosition, err = s.position(ctx, v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// QueuePosition returns the place of a waiting visit in its doctor's queue:
// 1 is the next patient, ordered by booking time. A visit that no longer
// waits has none (0).
func (s *Service) QueuePosition(ctx context.Context, by Party, id string) (int, error) {
	v, err := s.Get(ctx, by, id)
	if err != nil {
		return 0, err
	}
	return v.QueuePosition, nil
}

func (s *Service) position(ctx context.Context, v *Visit) (int, error) {
	var ahead int
	booked := ihos.FormatTime(v.BookedAt)
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM visits WHERE doctor_id = ? AND status = ? AND deleted_at IS NULL
		AND (booked_at < ? OR (booked_at = ? AND id < ?))`, v.DoctorID, StatusWaiting, booked, booked, v.ID).Scan(&ahead)
	return ahead + 1, err
}

// Waiting returns the doctor's waiting visits in queue order (the worklist).
func (s *Service) Waiting(ctx context.Context, by Party, doctorID string) ([]*Visit, error) {
	if by.Role != RoleSystem && (by.Role != RoleDoctor || by.ID != doctorID) {
		return nil, ihos.Errorf(ihos.EForbidden, "只能查看自己的候诊患者")
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+visitCols+` FROM visits WHERE doctor_id = ? AND status = ? AND deleted_at IS NULL
		ORDER BY booked_at, id`, doctorID, StatusWaiting)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Visit
	for rows.Next() {
		v, err := scanVisit(rows)
		if err != nil {
			return nil, err
		}
		v.QueuePosition = len(out) + 1
		out = append(out, v)
	}
	return out, rows.Err()
}

// Messages returns up to limit messages of the visit after seq after, in
// order (limit ≤ 0 or > 500 means 500).
func (s *Service) Messages(ctx context.Context, by Party, visitID string, after int64, limit int) ([]*Message, error) {
	v, err := s.load(ctx, visitID)
	if err != nil {
		return nil, err
	}
	if err := party(by, v); err != nil {
		return nil, err
	}
	return s.messagesAfter(ctx, visitID, after, limit)
}

func (s *Service) messagesAfter(ctx context.Context, visitID string, after int64, limit int) ([]*Message, error) {
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	return s.queryMessages(ctx, `SELECT `+messageCols+` FROM visit_messages WHERE visit_id = ? AND seq > ? ORDER BY seq LIMIT ?`, visitID, after, limit)
}

// feedAfter returns the messages of every visit of by after feed position
// after, in commit order.
func (s *Service) feedAfter(ctx context.Context, by Party, after int64, limit int) ([]*Message, error) {
	col := "patient_id"
	if by.Role == RoleDoctor {
		col = "doctor_id"
	}
	return s.queryMessages(ctx, `SELECT `+messageCols+` FROM visit_messages WHERE `+col+` = ? AND feed_seq > ? ORDER BY feed_seq LIMIT ?`, by.ID, after, limit)
}

func (s *Service) queryMessages(ctx context.Context, query string, args ...any) ([]*Message, error) {
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Message
	for rows.Next() {
		var m Message
		var body sql.NullString
		var created string
		if err := rows.Scan(&m.ID, &m.VisitID, &m.Seq, &m.SenderRole, &m.SenderID, &m.Kind, &m.Event, &body, &m.AttachmentID, &m.Feed, &created); err != nil {
			return nil, err
		}
		m.Body, m.CreatedAt = body.String, parseTime(created)
		out = append(out, &m)
	}
	return out, rows.Err()
}

// History returns the visit's status changes, oldest first.
func (s *Service) History(ctx context.Context, by Party, visitID string) ([]Event, error) {
	v, err := s.load(ctx, visitID)
	if err != nil {
		return nil, err
	}
	if err := party(by, v); err != nil {
		return nil, err
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT from_status, to_status, actor_role, actor_id, reason, at FROM visit_events WHERE visit_id = ? ORDER BY at, id`, visitID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at string
		if err := rows.Scan(&e.From, &e.To, &e.ActorRole, &e.ActorID, &e.Reason, &at); err != nil {
			return nil, err
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Event is one status change of a visit.
type Event struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	ActorRole string    `json:"actor_role"`
	ActorID   string    `json:"actor_id"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

const visitCols = `id, hospital_id, booking_id, patient_id, doctor_id, department_id, visit_type, status, booked_at,
	accepted_at, ended_at, last_seq, version, created_at, updated_at`

const messageCols = `id, visit_id, seq, sender_role, sender_id, kind, event, body, attachment_id, feed_seq, created_at`

type scanner interface{ Scan(...any) error }

func scanVisit(row scanner) (*Visit, error) {
	var v Visit
	var booked, created, updated string
	var accepted, ended sql.NullString
	if err := row.Scan(&v.ID, &v.HospitalID, &v.BookingID, &v.PatientID, &v.DoctorID, &v.DepartmentID, &v.Type, &v.Status, &booked,
		&accepted, &ended, &v.LastSeq, &v.Version, &created, &updated); err != nil {
		return nil, err
	}
	v.BookedAt, v.AcceptedAt, v.EndedAt = parseTime(booked), parseTime(accepted.String), parseTime(ended.String)
	v.CreatedAt, v.UpdatedAt = parseTime(created), parseTime(updated)
	return label(&v), nil
}

// label fills the labels people read.
func label(v *Visit) *Visit {
	v.TypeLabel, v.StatusLabel = TypeLabels[v.Type], StatusLabels[v.Status]
	return v
}

// load reads a visit.
func (s *Service) load(ctx context.Context, id string) (*Visit, error) {
	v, err := scanVisit(s.DB.QueryRowContext(ctx, `SELECT `+visitCols+` FROM visits WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return v, err
}

// lock reads a visit inside tx and locks it for the rest of tx: its status
// and its message numbering change one transaction at a time.
func (s *Service) lock(ctx context.Context, tx *sql.Tx, id string) (*Visit, error) {
	v, err := scanVisit(s.DB.TxQueryRow(ctx, tx, `SELECT `+visitCols+` FROM visits WHERE id = ? AND deleted_at IS NULL`+s.DB.ForUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return v, err
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := ihos.ParseTime(s)
	return t
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ihos.FormatTime(t)
}
