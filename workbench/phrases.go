package workbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"ihos"
	"ihos/internal/audit"
)

// Phrase categories (医嘱术语).
const (
	PhraseUsage     = "usage"     // 用法: 口服, 静脉滴注, …
	PhraseFrequency = "frequency" // 频次: qd 每日一次, …
	PhraseDosage    = "dosage"    // 用量: 每次1片, …
	PhraseAdvice    = "advice"    // 医嘱: 低盐低脂饮食, 两周后复诊, …
)

// PhraseCategories are the categories as doctors read them.
var PhraseCategories = map[string]string{PhraseUsage: "用法", PhraseFrequency: "频次", PhraseDosage: "用量", PhraseAdvice: "医嘱"}

// Phrase is an order phrase. Defaults (Own false) are the hospital's, seeded
// by the migration, seen by every doctor; the rest are the doctor's own.
// Code is the short form a prescription line carries (qd, bid, …), "" when
// the phrase has none.
type Phrase struct {
	ID            string `json:"id"`
	Category      string `json:"category"`
	CategoryLabel string `json:"category_label"`
	Code          string `json:"code,omitempty"`
	Text          string `json:"text"`
	Own           bool   `json:"own"`
}

// PhraseInput is a phrase the doctor adds.
type PhraseInput struct {
	Category string `json:"category"`
	Code     string `json:"code"`
	Text     string `json:"text"`
}

func checkCategory(c string) error {
	if _, ok := PhraseCategories[c]; !ok {
		return ihos.Invalid(map[string]string{"category": "类别应为用法（usage）、频次（frequency）、用量（dosage）或医嘱（advice）"})
	}
	return nil
}

// Phrases lists the phrases the doctor sees in category ("" for all): the
// defaults of every hospital and of the doctor's, then their own, each in
// their order.
func (s *Service) Phrases(ctx context.Context, d Doctor, category string) ([]Phrase, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	q := `SELECT id, category, code, phrase, doctor_id FROM order_phrases
		WHERE enabled = 1 AND ((doctor_id = '' AND hospital_id IN ('', ?)) OR doctor_id = ?)`
	args := []any{d.HospitalID, d.ID}
	if category != "" {
		if err := checkCategory(category); err != nil {
			return nil, err
		}
		q += ` AND category = ?`
		args = append(args, category)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY category, doctor_id, sort_order, created_at, id`, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []Phrase{}
	for rows.Next() {
		var p Phrase
		var owner string
		if err := rows.Scan(&p.ID, &p.Category, &p.Code, &p.Text, &owner); err != nil {
			return nil, ihos.Internal(err)
		}
		p.CategoryLabel, p.Own = PhraseCategories[p.Category], owner != ""
		out = append(out, p)
	}
	return out, internal(rows.Err())
}

// AddPhrase adds a phrase of the doctor's own. One the doctor already sees
// in the category is a conflict.
func (s *Service) AddPhrase(ctx context.Context, d Doctor, in PhraseInput) (*Phrase, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	in.Category, in.Code, in.Text = strings.TrimSpace(in.Category), strings.TrimSpace(in.Code), strings.TrimSpace(in.Text)
	if err := checkCategory(in.Category); err != nil {
		return nil, err
	}
	f := map[string]string{}
	if n := utf8.RuneCountInString(in.Text); n == 0 {
		f["text"] = "请填写术语内容"
	} else if n > 100 {
		f["text"] = "术语内容不能超过 100 个字"
	} else if in.Category != PhraseAdvice && n > 20 {
		f["text"] = "用法、频次、用量不能超过 20 个字（处方中每项最多 20 个字）"
	}
	if len(in.Code) > 16 || strings.ContainsFunc(in.Code, func(r rune) bool { return r > 0x7e || r < 0x21 }) {
		f["code"] = "简写只能是不超过 16 个字符的字母、数字或符号（如 qd、bid）"
	}
	if len(f) > 0 {
		return nil, ihos.Invalid(f)
	}
	p := &Phrase{ID: ihos.NewID(), Category: in.Category, CategoryLabel: PhraseCategories[in.Category], Code: in.Code, Text: in.Text, Own: true}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var n, next int
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM order_phrases WHERE enabled = 1 AND category = ? AND phrase = ?
			AND ((doctor_id = '' AND hospital_id IN ('', ?)) OR doctor_id = ?)`, in.Category, in.Text, d.HospitalID, d.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ihos.Errorf(ihos.EConflict, "已有相同的%s术语「%s」", p.CategoryLabel, in.Text)
		}
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT COALESCE(MAX(sort_order), 0) + 10 FROM order_phrases WHERE doctor_id = ? AND category = ?`,
			d.ID, in.Category).Scan(&next); err != nil {
			return err
		}
		now := ihos.FormatTime(s.now())
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO order_phrases (id, hospital_id, doctor_id, category, code, phrase, sort_order, enabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`, p.ID, d.HospitalID, d.ID, p.Category, p.Code, p.Text, next, now, now); err != nil {
			return err
		}
		after, _ := json.Marshal(p)
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "phrase.create", Resource: "order_phrases", RecordID: p.ID,
			Summary: "医生 " + d.ID + " 新增" + p.CategoryLabel + "术语「" + p.Text + "」", After: after})
	})
	if err != nil {
		return nil, internal(err)
	}
	return p, nil
}

// DisablePhrase stops offering one of the doctor's own phrases. The
// hospital's defaults are the hospital's: a doctor cannot disable them.
func (s *Service) DisablePhrase(ctx context.Context, d Doctor, id string) error {
	if err := check(d); err != nil {
		return err
	}
	return internal(s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var owner, hospital, category, text string
		var enabled bool
		err := s.DB.TxQueryRow(ctx, tx, `SELECT doctor_id, hospital_id, category, phrase, enabled FROM order_phrases WHERE id = ?`+s.DB.ForUpdate(), id).
			Scan(&owner, &hospital, &category, &text, &enabled)
		switch {
		case errors.Is(err, sql.ErrNoRows), err == nil && owner != "" && owner != d.ID,
			err == nil && owner == "" && hospital != "" && hospital != d.HospitalID:
			return ihos.Errorf(ihos.ENotFound, "医嘱术语不存在")
		case err != nil:
			return err
		case owner == "":
			return ihos.Errorf(ihos.EForbidden, "医院默认术语不能停用，如需调整请联系医务科")
		case !enabled:
			return nil
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE order_phrases SET enabled = 0, updated_at = ? WHERE id = ?`, ihos.FormatTime(s.now()), id); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "phrase.disable", Resource: "order_phrases", RecordID: id,
			Summary: "医生 " + d.ID + " 停用" + PhraseCategories[category] + "术语「" + text + "」",
			Before:  json.RawMessage(`{"enabled":true}`), After: json.RawMessage(`{"enabled":false}`)})
	}))
}
