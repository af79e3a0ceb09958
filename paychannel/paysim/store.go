package paysim

import (
	"context"
	"crypto"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/emmansun/gmsm/smx509"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"ihos/paychannel"
)

// store keeps the simulator's state in its own SQLite file: a key/value
// table for the platform key and merchants, and one JSON document per order
// and refund. It is the simulator's private file, not a project database,
// so it has no migrations.
type store struct {
	db *sql.DB
}

func openStore(ctx context.Context, path string) (*store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("paysim: create data dir: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(5000)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("paysim: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS meta (id VARCHAR(100) PRIMARY KEY, data TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS orders (id VARCHAR(100) PRIMARY KEY, data TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS refunds (id VARCHAR(100) PRIMARY KEY, data TEXT NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("paysim: create tables in %s: %w", path, err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil { // it holds the platform private key
		db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

func (st *store) close() { st.db.Close() }

func (st *store) put(ctx context.Context, table, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = st.db.ExecContext(ctx, `INSERT INTO `+table+` (id, data) VALUES (?, ?)
		ON CONFLICT(id) DO UPDATE SET data = excluded.data`, id, string(b))
	return err
}

// save writes an order or a refund through to the file. Call with s.mu
// held, so that writes reach the file in the order they happened.
func (s *Sim) save(v any) {
	if s.store == nil {
		return
	}
	var err error
	switch x := v.(type) {
	case *order:
		err = s.store.put(context.Background(), "orders", key(x.MchID, x.OutTradeNo), x)
	case *refund:
		err = s.store.put(context.Background(), "refunds", key(x.MchID, x.OutRefundNo), x)
	}
	if err != nil {
		s.log.Error("save state", "err", err)
	}
}

type platformRecord struct {
	Key  string `json:"key"`  // PKCS #8 DER, base64
	Cert string `json:"cert"` // DER, base64
}

// platform reads the platform key stored under name ("platform" for RSA,
// "platform-sm2"); nil when there is none.
func (st *store) platform(ctx context.Context, name string) (crypto.Signer, []byte, error) {
	var v string
	err := st.db.QueryRowContext(ctx, `SELECT data FROM meta WHERE id = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var rec platformRecord
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return nil, nil, err
	}
	kd, err1 := base64.StdEncoding.DecodeString(rec.Key)
	cd, err2 := base64.StdEncoding.DecodeString(rec.Cert)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, err
	}
	k, err := smx509.ParsePKCS8PrivateKey(kd)
	if err != nil {
		return nil, nil, err
	}
	sk, ok := k.(crypto.Signer)
	if !ok || paychannel.SchemeOf(sk) == "" {
		return nil, nil, fmt.Errorf("stored %s key is %T, want RSA or SM2", name, k)
	}
	return sk, cd, nil
}

func (st *store) savePlatform(ctx context.Context, name string, key crypto.Signer, der []byte) error {
	kd, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return st.put(ctx, "meta", name, platformRecord{Key: base64.StdEncoding.EncodeToString(kd), Cert: base64.StdEncoding.EncodeToString(der)})
}

type merchantRecord struct {
	MchID     string `json:"mchid"`
	AppID     string `json:"appid"`
	SerialNo  string `json:"serial_no"`
	PublicKey string `json:"public_key"`
	APIv3Key  string `json:"apiv3_key"`
}

func (st *store) saveMerchant(ctx context.Context, m Merchant) error {
	return st.put(ctx, "meta", "merchant/"+m.MchID, merchantRecord{MchID: m.MchID, AppID: m.AppID, SerialNo: m.SerialNo,
		PublicKey: string(paychannel.MarshalPublicKeyPEM(m.PublicKey)), APIv3Key: string(m.APIv3Key)})
}

// load reads merchants, orders and refunds from the file.
func (s *Sim) load(ctx context.Context) error {
	db := s.store.db
	rows, err := db.QueryContext(ctx, `SELECT data FROM meta WHERE id LIKE 'merchant/%'`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v string
		var rec merchantRecord
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			rows.Close()
			return err
		}
		pub, _, err := paychannel.ParsePublicKeyPEM([]byte(rec.PublicKey))
		if err != nil {
			rows.Close()
			return fmt.Errorf("paysim: stored merchant %s: %w", rec.MchID, err)
		}
		s.merchants[rec.MchID] = Merchant{MchID: rec.MchID, AppID: rec.AppID, SerialNo: rec.SerialNo, PublicKey: pub, APIv3Key: []byte(rec.APIv3Key)}
	}
	rows.Close()
	if err := loadJSON(ctx, db, "orders", func(b []byte) error {
		var o order
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		s.orders[key(o.MchID, o.OutTradeNo)] = &o
		return nil
	}); err != nil {
		return err
	}
	if err := loadJSON(ctx, db, "refunds", func(b []byte) error {
		var f refund
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		s.refunds[key(f.MchID, f.OutRefundNo)] = &f
		return nil
	}); err != nil {
		return err
	}
	s.seq = uint64(len(s.orders) + len(s.refunds)) // new numbers stay unique: the date prefix changes daily, the count only grows
	return nil
}

func loadJSON(ctx context.Context, db *sql.DB, table string, f func([]byte) error) error {
	rows, err := db.QueryContext(ctx, `SELECT data FROM `+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := f(b); err != nil {
			return fmt.Errorf("paysim: stored %s: %w", table, err)
		}
	}
	return rows.Err()
}
