// Package ratings is the patients' rating of their online visits (issue 8):
// once a visit has ended, the patient account it was booked for rates the
// doctor once — a score of 1 to 5, an optional comment and tags from a fixed
// list — and everyone sees the doctor's average and the ratings with the
// patients' names masked.
//
// Ratings are cloud-owned and replicate to the hospital's appliance (the
// console's visit records); a rating is never changed or deleted. The public
// doctor list sorts by rating and by consultation volume, so the cloud keeps a
// per-doctor aggregate (doctor_stats) instead of counting at every request:
// the rating's own transaction adds to it, and Follow counts each ended visit
// once as its change enters the cloud's change feed.
package ratings

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Entities declares the rating data the appliance receives (cloud-owned). The
// account that rated stays in the cloud: accounts do not exist at the
// hospital.
func Entities() []sync.Entity {
	return []sync.Entity{{Name: "ratings", Table: "ratings", Owner: sync.Cloud, Local: []string{"account_id"}}}
}

// Tags are the tags a patient may pick, in the order the page shows them. A
// fixed list keeps them comparable across doctors and free of personal data.
var Tags = []string{"回复及时", "解答专业", "态度亲切", "耐心细致", "建议有帮助", "讲解清楚", "医术精湛", "值得推荐", "回复较慢", "解答不够详细"}

// aliases are other words for a tag that pages have used; they are stored
// as the tag they stand for.
var aliases = map[string]string{"态度和蔼": "态度亲切", "回复很及时": "回复及时"}

// Limits of one rating.
const (
	MaxComment = 500 // characters
	MaxTags    = 5
)

// Service records and reads ratings.
type Service struct {
	DB *sqldb.DB
	// Capture records replicated rows for the appliance inside a transaction
	// (sync.Replica.Capture with hospital ""); nil without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Input is what a patient sends.
type Input struct {
	Score   int      `json:"score"`
	Comment string   `json:"comment"`
	Tags    []string `json:"tags"`
}

// Rating is one visit's rating as its patient sees it.
type Rating struct {
	ID        string    `json:"id"`
	VisitID   string    `json:"visit_id"`
	DoctorID  string    `json:"doctor_id"`
	PatientID string    `json:"patient_id"`
	Score     int       `json:"score"`
	Comment   string    `json:"comment"`
	Tags      []string  `json:"tags"`
	CreatedAt time.Time `json:"created_at"`
}

// Errors a patient may meet.
var (
	errNoVisit   = ihos.Errorf(ihos.ENotFound, "问诊不存在")
	errRated     = ihos.Errorf(ihos.EConflict, "已评价")
	errNotEnded  = ihos.Errorf(ihos.EConflict, "问诊结束后才能评价")
	errCancelled = ihos.Errorf(ihos.EConflict, "已取消的问诊不能评价")
	errNoRating  = ihos.Errorf(ihos.ENotFound, "尚未评价")
)

// check validates and normalises in.
func check(in *Input) error {
	f := map[string]string{}
	if in.Score < 1 || in.Score > 5 {
		f["score"] = "请选择 1 到 5 星"
	}
	in.Comment = strings.TrimSpace(in.Comment)
	if utf8.RuneCountInString(in.Comment) > MaxComment {
		f["comment"] = fmt.Sprintf("评价内容不能超过 %d 字", MaxComment)
	}
	var tags []string
	for _, t := range in.Tags {
		t = strings.TrimSpace(t)
		if a, ok := aliases[t]; ok {
			t = a
		}
		if !slices.Contains(Tags, t) {
			f["tags"] = "标签“" + ihos.Truncate(t, 20) + "”不在可选范围内"
			break
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	if len(tags) > MaxTags {
		f["tags"] = fmt.Sprintf("最多选择 %d 个标签", MaxTags)
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	if tags == nil {
		tags = []string{}
	}
	in.Tags = tags
	return nil
}

// Rate records account's rating of visit: only an account whose member is the
// visit's patient (anyone else's visit is "not found"), only once the visit
// has ended, and only once (409 已评价). The rating, the doctor's aggregate,
// the change for the appliance and the audit entry commit together.
func (s *Service) Rate(ctx context.Context, account, visitID string, in Input) (*Rating, error) {
	if err := check(&in); err != nil {
		return nil, err
	}
	now := s.now()
	r := &Rating{ID: ihos.NewID(), VisitID: visitID, Score: in.Score, Comment: in.Comment, Tags: in.Tags, CreatedAt: now}
	tags, _ := json.Marshal(in.Tags)
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var hospital, status string
		err := s.DB.TxQueryRow(ctx, tx, `SELECT v.hospital_id, v.patient_id, v.doctor_id, v.status FROM visits v
			JOIN patient_members m ON m.patient_id = v.patient_id AND m.account_id = ? AND m.deleted_at IS NULL
			WHERE v.id = ? AND v.deleted_at IS NULL`, account, visitID).Scan(&hospital, &r.PatientID, &r.DoctorID, &status)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return errNoVisit
		case err != nil:
			return err
		}
		var n int
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM ratings WHERE visit_id = ?`, visitID).Scan(&n); err != nil {
			return err
		}
		switch {
		case n > 0:
			return errRated
		case status == "cancelled":
			return errCancelled
		case status != "ended":
			return errNotEnded
		}
		stamp := ihos.FormatTime(now)
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO ratings (id, hospital_id, visit_id, doctor_id, patient_id, account_id, score, comment, tags,
			version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			r.ID, hospital, visitID, r.DoctorID, r.PatientID, account, r.Score, r.Comment, string(tags), stamp, stamp); err != nil {
			if sqldb.IsUniqueViolation(err) {
				return errRated
			}
			return err
		}
		if err := bump(ctx, tx, r.DoctorID, 1, int64(r.Score), 0, stamp); err != nil {
			return err
		}
		if s.Capture != nil {
			if err := s.Capture(ctx, tx, sync.Ref{Entity: "ratings", ID: r.ID}); err != nil {
				return err
			}
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "create", Resource: "ratings", RecordID: r.ID,
			Summary: fmt.Sprintf("评价问诊 %s（医生 %s）：%d 星", visitID, r.DoctorID, r.Score)})
	})
	if err != nil {
		var e *ihos.Error
		if errors.As(err, &e) {
			return nil, err
		}
		return nil, ihos.Internal(err)
	}
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
	return r, nil
}

// OfVisit returns the rating of visit as its patient account sees it
// (ENotFound when none, or the visit is not the account's).
func (s *Service) OfVisit(ctx context.Context, account, visitID string) (*Rating, error) {
	var r Rating
	var tags, created string
	err := s.DB.QueryRowContext(ctx, `SELECT r.id, r.visit_id, r.doctor_id, r.patient_id, r.score, r.comment, r.tags, r.created_at FROM ratings r
		JOIN patient_members m ON m.patient_id = r.patient_id AND m.account_id = ? AND m.deleted_at IS NULL
		WHERE r.visit_id = ? AND r.deleted_at IS NULL`, account, visitID).
		Scan(&r.ID, &r.VisitID, &r.DoctorID, &r.PatientID, &r.Score, &r.Comment, &tags, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRating
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	r.Tags, r.CreatedAt = parseTags(tags), parseTime(created)
	return &r, nil
}

// Public is a rating as everyone sees it on the doctor's homepage.
type Public struct {
	Score     int       `json:"score"`
	Comment   string    `json:"comment"`
	Tags      []string  `json:"tags"`
	CreatedAt time.Time `json:"created_at"`
	Patient   string    `json:"patient"` // masked: 张*
}

// Summary is a doctor's ratings: the average of all, their number, and the
// newest ones.
type Summary struct {
	Average float64  `json:"average"`
	Count   int64    `json:"count"`
	Items   []Public `json:"items"`
}

// Doctor returns doctor's average and up to limit ratings, newest first,
// older than before when it is set (the next page).
func (s *Service) Doctor(ctx context.Context, doctor string, limit int, before time.Time) (*Summary, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	out := &Summary{Items: []Public{}}
	var sum int64
	err := s.DB.QueryRowContext(ctx, `SELECT rating_count, score_sum FROM doctor_stats WHERE doctor_id = ?`, doctor).Scan(&out.Count, &sum)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Internal(err)
	}
	out.Average = Average(sum, out.Count)
	q := `SELECT r.score, r.comment, r.tags, r.created_at, COALESCE(p.name, '') FROM ratings r LEFT JOIN patients p ON p.id = r.patient_id
		WHERE r.doctor_id = ? AND r.deleted_at IS NULL`
	args := []any{doctor}
	if !before.IsZero() {
		q += ` AND r.created_at < ?`
		args = append(args, ihos.FormatTime(before))
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Public
		var tags, created, name string
		if err := rows.Scan(&p.Score, &p.Comment, &tags, &created, &name); err != nil {
			return nil, ihos.Internal(err)
		}
		p.Tags, p.CreatedAt, p.Patient = parseTags(tags), parseTime(created), MaskName(name)
		out.Items = append(out.Items, p)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

// MaskName shows a patient's surname only: 张三 → 张*, 欧阳娜娜 → 欧***.
func MaskName(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return "匿名患者"
	}
	if utf8.RuneCountInString(name) == 1 {
		return name + "*"
	}
	return pii.Mask(name, 1, 0)
}

// Average is the mean score rounded to one decimal (0 without ratings).
func Average(sum, count int64) float64 {
	if count <= 0 {
		return 0
	}
	return math.Round(float64(sum)*10/float64(count)) / 10
}

// bump adds to doctor's aggregate row, creating it on first use.
func bump(ctx context.Context, tx *sql.Tx, doctor string, ratings, score, visits int64, stamp string) error {
	update := func() (int64, error) {
		res, err := tx.ExecContext(ctx, `UPDATE doctor_stats SET rating_count = rating_count + ?, score_sum = score_sum + ?,
			visit_count = visit_count + ?, updated_at = ? WHERE doctor_id = ?`, ratings, score, visits, stamp, doctor)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	n, err := update()
	if err != nil || n > 0 {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO doctor_stats (doctor_id, rating_count, score_sum, visit_count, updated_at) VALUES (?, ?, ?, ?, ?)`,
		doctor, ratings, score, visits, stamp)
	if sqldb.IsUniqueViolation(err) {
		// Another transaction created the row since (MariaDB): add to it.
		_, err = update()
	}
	return err
}

// Follow counts ended visits into their doctors' aggregate as the visits'
// changes enter the cloud's change feed (sync.Replica.Follow), inside that
// transaction. A visit is counted once (doctor_stat_visits remembers it),
// however often its row changes afterwards.
func Follow(ctx context.Context, tx *sql.Tx, envs []*sync.Envelope) error {
	for _, env := range envs {
		if env.Snapshot {
			continue
		}
		for _, row := range env.Rows {
			if row.Entity != "visits" || value(row, "status") != "ended" {
				continue
			}
			doctor := value(row, "doctor_id")
			if doctor == "" {
				continue
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM doctor_stat_visits WHERE visit_id = ?`, row.ID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			stamp := ihos.FormatTime(env.At)
			if _, err := tx.ExecContext(ctx, `INSERT INTO doctor_stat_visits (visit_id, doctor_id, counted_at) VALUES (?, ?, ?)`,
				row.ID, doctor, stamp); err != nil {
				return err
			}
			if err := bump(ctx, tx, doctor, 0, 0, 1, stamp); err != nil {
				return err
			}
		}
	}
	return nil
}

func value(row sync.RowChange, col string) string {
	if v := row.Values[col]; v != nil {
		return *v
	}
	return ""
}

func parseTags(s string) []string {
	var tags []string
	if json.Unmarshal([]byte(s), &tags) != nil || tags == nil {
		return []string{}
	}
	return tags
}

func parseTime(s string) time.Time {
	t, _ := ihos.ParseTime(s)
	return t
}
