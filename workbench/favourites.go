package workbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Favourite kinds, as the doctor app names them, and the HIS catalogue kind
// each one is.
const (
	KindDrug = "drug"
	KindExam = "exam"
	KindLab  = "lab"
)

var catalogKinds = map[string]string{KindDrug: ihos.CatalogDrug, KindExam: ihos.CatalogExam, KindLab: ihos.CatalogLab}

// KindLabels are the kinds as doctors read them.
var KindLabels = map[string]string{KindDrug: "药品", KindExam: "检查", KindLab: "检验"}

// forbiddenOnline are the drug flags kept out of online prescriptions
// (DESIGN.md §7): such a drug cannot be a favourite or in a plan either.
var forbiddenOnline = []string{ihos.FlagNarcotic, ihos.FlagPsychotropic1, ihos.FlagPsychotropic2}

// Favourite is a favourite item with its current catalogue entry: the price
// is the HIS catalogue's of today. Available is false when the item left the
// catalogue or was disabled in the HIS (it cannot be ordered then).
type Favourite struct {
	Kind      string `json:"kind"`
	KindLabel string `json:"kind_label"`
	Code      string `json:"code"`
	Name      string `json:"name"`
	Spec      string `json:"spec"`
	Unit      string `json:"unit"`
	PriceFen  int64  `json:"price_fen"`
	Price     string `json:"price"` // yuan, for people
	Category  string `json:"category,omitempty"`
	Specimen  string `json:"specimen,omitempty"`
	Available bool   `json:"available"`
}

// catalogItem is one row of the replicated HIS catalogue.
type catalogItem struct {
	name, spec, unit, flags, category, specimen string
	priceFen                                    int64
	enabled                                     bool
}

// catalog reads code of kind (KindDrug…) from the hospital's catalogue;
// found is false when it is not there.
func (s *Service) catalog(ctx context.Context, hospital, kind, code string) (c catalogItem, found bool, err error) {
	err = s.DB.QueryRowContext(ctx, `SELECT name, spec, unit, price_fen, flags, category, specimen, enabled FROM his_catalog
		WHERE hospital_id = ? AND kind = ? AND code = ? AND deleted_at IS NULL`, hospital, catalogKinds[kind], code).
		Scan(&c.name, &c.spec, &c.unit, &c.priceFen, &c.flags, &c.category, &c.specimen, &c.enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, ihos.Internal(err)
	}
	return c, true, nil
}

func (c catalogItem) forbidden() bool {
	for _, f := range strings.Split(c.flags, ",") {
		if slices.Contains(forbiddenOnline, strings.TrimSpace(f)) {
			return true
		}
	}
	return false
}

// orderable checks that code of kind can be ordered online today; field
// names the input in the error.
func (s *Service) orderable(ctx context.Context, d Doctor, kind, code, field string) (catalogItem, error) {
	c, found, err := s.catalog(ctx, d.HospitalID, kind, code)
	switch {
	case err != nil:
		return c, err
	case !found:
		return c, ihos.Invalid(map[string]string{field: KindLabels[kind] + "目录中没有编码为 " + code + " 的项目"})
	case !c.enabled:
		return c, ihos.Invalid(map[string]string{field: c.name + " 已在医院停用"})
	case kind == KindDrug && c.forbidden():
		return c, ihos.Errorf(ihos.EForbidden, "麻醉药品、精神药品不能在互联网医院开具：%s", c.name)
	}
	return c, nil
}

func checkKind(kind string) error {
	if _, ok := catalogKinds[kind]; !ok {
		return ihos.Invalid(map[string]string{"kind": "类别应为药品（drug）、检查（exam）或检验（lab）"})
	}
	return nil
}

// Favourites lists the doctor's favourites of kind ("" for every kind),
// the most recently added first.
func (s *Service) Favourites(ctx context.Context, d Doctor, kind string) ([]Favourite, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	q, args := `SELECT f.kind, f.code, f.name, c.name, c.spec, c.unit, c.price_fen, c.category, c.specimen, c.enabled
		FROM doctor_favourites f LEFT JOIN his_catalog c ON c.hospital_id = ? AND c.code = f.code AND c.deleted_at IS NULL AND c.kind = CASE f.kind
			WHEN 'drug' THEN 'DRUG' WHEN 'exam' THEN 'EXAM' ELSE 'LAB' END
		WHERE f.doctor_id = ?`, []any{d.HospitalID, d.ID}
	if kind != "" {
		if err := checkKind(kind); err != nil {
			return nil, err
		}
		q += ` AND f.kind = ?`
		args = append(args, kind)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY f.created_at DESC, f.id`, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []Favourite{}
	for rows.Next() {
		var f Favourite
		var saved string
		var name, spec, unit, category, specimen sql.NullString
		var price sql.NullInt64
		var enabled sql.NullBool
		if err := rows.Scan(&f.Kind, &f.Code, &saved, &name, &spec, &unit, &price, &category, &specimen, &enabled); err != nil {
			return nil, ihos.Internal(err)
		}
		f.KindLabel, f.Name = KindLabels[f.Kind], saved
		if name.Valid {
			f.Name, f.Spec, f.Unit, f.PriceFen = name.String, spec.String, unit.String, price.Int64
			f.Category, f.Specimen, f.Available = category.String, specimen.String, enabled.Bool
		}
		f.Price = ihos.FormatYuan(f.PriceFen)
		out = append(out, f)
	}
	return out, internal(rows.Err())
}

// AddFavourite adds code of kind to the doctor's favourites: it must be in
// the hospital's current catalogue, enabled, and (drugs) prescribable
// online. Adding it again is a conflict.
func (s *Service) AddFavourite(ctx context.Context, d Doctor, kind, code string) (*Favourite, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	kind, code = strings.TrimSpace(kind), strings.TrimSpace(code)
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	if code == "" || len(code) > 64 {
		return nil, ihos.Invalid(map[string]string{"code": "请选择" + KindLabels[kind]})
	}
	c, err := s.orderable(ctx, d, kind, code, "code")
	if err != nil {
		return nil, err
	}
	id, now := ihos.NewID(), ihos.FormatTime(s.now())
	f := &Favourite{Kind: kind, KindLabel: KindLabels[kind], Code: code, Name: c.name, Spec: c.spec, Unit: c.unit, PriceFen: c.priceFen,
		Price: ihos.FormatYuan(c.priceFen), Category: c.category, Specimen: c.specimen, Available: true}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO doctor_favourites (id, hospital_id, doctor_id, kind, code, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, d.HospitalID, d.ID, kind, code, ihos.Truncate(c.name, 200), now); err != nil {
			return err
		}
		after, _ := json.Marshal(map[string]string{"kind": kind, "code": code, "name": c.name})
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "favourite.add", Resource: "doctor_favourites", RecordID: id,
			Summary: "医生 " + d.ID + " 收藏" + KindLabels[kind] + " " + code + " " + c.name, After: after})
	})
	if sqldb.IsUniqueViolation(err) {
		return nil, ihos.Errorf(ihos.EConflict, "%s已在常用%s中", c.name, KindLabels[kind])
	}
	if err != nil {
		return nil, internal(err)
	}
	return f, nil
}

// RemoveFavourite takes code of kind off the doctor's favourites. A
// favourite is a bookmark, not a record: it is removed (and the removal
// audited).
func (s *Service) RemoveFavourite(ctx context.Context, d Doctor, kind, code string) error {
	if err := check(d); err != nil {
		return err
	}
	if err := checkKind(kind); err != nil {
		return err
	}
	return internal(s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var id, name string
		err := s.DB.TxQueryRow(ctx, tx, `SELECT id, name FROM doctor_favourites WHERE doctor_id = ? AND kind = ? AND code = ?`, d.ID, kind, code).Scan(&id, &name)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "常用%s中没有该项目", KindLabels[kind])
		}
		if err != nil {
			return err
		}
		if _, err := s.DB.TxExec(ctx, tx, `DELETE FROM doctor_favourites WHERE id = ?`, id); err != nil {
			return err
		}
		before, _ := json.Marshal(map[string]string{"kind": kind, "code": code, "name": name})
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "favourite.remove", Resource: "doctor_favourites", RecordID: id,
			Summary: "医生 " + d.ID + " 取消收藏" + KindLabels[kind] + " " + code + " " + name, Before: before})
	}))
}
