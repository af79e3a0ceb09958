package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/internal/pii"
)

// Sealed columns (Entity.Sealed) hold personal data sealed under the node's
// own PII key, as everywhere else in its database. Such a value cannot simply
// be copied across: the other side has another key. So a sealed value crosses
// sealed again under its hospital's transit key, which only that hospital's
// appliance and the cloud hold: publish opens it with the local key and seals
// it for transit, apply opens it with the transit key and seals it with the
// local one (and refreshes its blind index). Neither the JetStream streams nor
// the hub's disk ever hold it in clear text. See docs/decisions/0014.

// Keys are the keys sealed columns need.
type Keys struct {
	// Local is this node's PII key, under which sealed columns rest.
	Local *pii.Sealer
	// TransitKey returns hospital's 32-byte transit key. The cloud keeps one
	// per hospital in its database (Replica.StoredTransitKey); an appliance
	// fetches its own once over the link and keeps it in its data dir
	// (FetchedTransitKey).
	TransitKey func(ctx context.Context, hospital string) ([]byte, error)
	// Dir, on an appliance, is where its fetched transit key is kept;
	// StartLeaf then sets TransitKey to FetchedTransitKey(Dir, its link).
	Dir string

	mu    stdsync.Mutex
	cache map[string]*pii.Sealer
}

// Transit returns the sealer of hospital's transit key.
func (k *Keys) Transit(ctx context.Context, hospital string) (*pii.Sealer, error) {
	k.mu.Lock()
	s := k.cache[hospital]
	k.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if k.TransitKey == nil {
		return nil, errors.New("sync: no transit key source configured")
	}
	key, err := k.TransitKey(ctx, hospital)
	if err != nil {
		return nil, err
	}
	s, err = pii.New(key)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.cache == nil {
		k.cache = map[string]*pii.Sealer{}
	}
	k.cache[hospital] = s
	k.mu.Unlock()
	return s, nil
}

// methodTransitKey is the RPC an appliance fetches its transit key with. It
// travels on the hospital's own account over the mutually authenticated
// leafnode link, as a request/reply, never through a stream.
const methodTransitKey = "sync.transit_key"

// StoredTransitKey returns hospital's transit key from the cloud's database,
// making it on first use. The key rests sealed under the cloud's PII key; two
// cloud nodes making it at once agree on whichever row was inserted first.
func (r *Replica) StoredTransitKey(ctx context.Context, hospital string) ([]byte, error) {
	if r.Keys == nil || r.Keys.Local == nil {
		return nil, errors.New("sync: no local key for transit keys")
	}
	for range 2 {
		var sealed string
		err := r.DB.QueryRowContext(ctx, `SELECT key_sealed FROM sync_transit_keys WHERE hospital_id = ?`, hospital).Scan(&sealed)
		if err == nil {
			plain, err := r.Keys.Local.Open(sealed)
			if err != nil {
				return nil, fmt.Errorf("sync: transit key of %s: %w", hospital, err)
			}
			return hex.DecodeString(plain)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		sealed, err = r.Keys.Local.Seal(hex.EncodeToString(key))
		if err != nil {
			return nil, err
		}
		// A concurrent insert wins; the loop then reads its key.
		r.DB.ExecContext(ctx, `INSERT INTO sync_transit_keys (hospital_id, key_sealed, created_at) VALUES (?, ?, ?)`,
			hospital, sealed, ihos.FormatTime(time.Now()))
	}
	return nil, fmt.Errorf("sync: transit key of %s could not be stored", hospital)
}

// FetchedTransitKey is an appliance's TransitKey: the key file in dir, or,
// before the first fetch, the key asked of the cloud over l (then kept in the
// file, mode 0600, beside the node's PII key; back it up with it).
func FetchedTransitKey(dir string, l *Link) func(ctx context.Context, hospital string) ([]byte, error) {
	return func(ctx context.Context, hospital string) ([]byte, error) {
		path := filepath.Join(dir, "transit-"+hospital+".key")
		if b, err := os.ReadFile(path); err == nil {
			return hex.DecodeString(strings.TrimSpace(string(b)))
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		var out struct {
			Key string `json:"key"`
		}
		if err := l.Call(ctx, hospital, methodTransitKey, struct{}{}, &out); err != nil {
			return nil, err
		}
		key, err := hex.DecodeString(out.Key)
		if err != nil || len(key) != 32 {
			return nil, errors.New("sync: the cloud sent a malformed transit key")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(out.Key+"\n"), 0o600); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, err
		}
		return key, nil
	}
}

// serveTransitKey answers an appliance's methodTransitKey (cloud only).
func (l *Link) serveTransitKey() error {
	return l.Serve(methodTransitKey, func(ctx context.Context, hospital string, _ json.RawMessage) (any, error) {
		if l.Replica.Keys == nil || l.Replica.Keys.TransitKey == nil {
			return nil, ihos.Errorf(ihos.EUnavailable, "云端未配置传输密钥")
		}
		key, err := l.Replica.Keys.TransitKey(ctx, hospital)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		return map[string]string{"key": hex.EncodeToString(key)}, nil
	})
}

// outgoing returns payload as it may cross: sealed columns re-sealed under
// the hospital's transit key. A value that is not sealed (a row written
// before its column was declared sealed) is sealed for transit as it is.
func (r *Replica) outgoing(ctx context.Context, hospital string, payload []byte) ([]byte, error) {
	if !r.Entities.mayCarrySealed(payload) {
		return payload, nil
	}
	var env Envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return nil, err
	}
	changed := false
	var transit *pii.Sealer
	for _, row := range env.Rows {
		e, ok := r.Entities.Entity(row.Entity)
		if !ok || len(e.Sealed) == 0 {
			continue
		}
		for _, c := range e.Sealed {
			v := row.Values[c]
			if v == nil || *v == "" {
				continue
			}
			if transit == nil {
				if r.Keys == nil || r.Keys.Local == nil {
					return nil, errors.New("sync: sealed columns but no keys")
				}
				var err error
				if transit, err = r.Keys.Transit(ctx, hospital); err != nil {
					return nil, fmt.Errorf("sync: transit key: %w", err)
				}
			}
			plain := *v
			if pii.IsSealed(plain) {
				var err error
				if plain, err = r.Keys.Local.Open(plain); err != nil {
					return nil, fmt.Errorf("sync: %s %s.%s: %w", e.Name, row.ID, c, err)
				}
			}
			s, err := transit.Seal(plain)
			if err != nil {
				return nil, err
			}
			row.Values[c] = &s
			changed = true
		}
	}
	if !changed {
		return payload, nil
	}
	return json.Marshal(env)
}

// mayCarrySealed reports whether an encoded envelope has a row of an entity
// with sealed columns, without decoding it: most changes have none.
func (r *Registry) mayCarrySealed(payload []byte) bool {
	for _, m := range r.sealedMarkers {
		if bytes.Contains(payload, m) {
			return true
		}
	}
	return false
}

// incoming returns envs with their sealed columns opened with the hospital's
// transit key and sealed again with the local key, and their blind indexes
// set. The envelopes given are not changed (a failed batch is retried with
// them one at a time). A value that does not open is refused: it was sealed
// under another key and can never apply. A value in clear text (from a peer
// not yet upgraded) is sealed as it is.
func (r *Replica) incoming(ctx context.Context, hospital string, envs []*Envelope) ([]*Envelope, error) {
	if len(r.Entities.sealedMarkers) == 0 {
		return envs, nil
	}
	var transit *pii.Sealer
	out := envs
	copied := false
	for i, env := range envs {
		var rows []RowChange
		for j, row := range env.Rows {
			e, ok := r.Entities.Entity(row.Entity)
			if !ok || len(e.Sealed) == 0 {
				continue
			}
			if rows == nil {
				rows = append([]RowChange(nil), env.Rows...)
			}
			values := make(map[string]*string, len(row.Values)+len(e.Sealed))
			for k, v := range row.Values {
				values[k] = v
			}
			for _, c := range e.Sealed {
				delete(values, c+"_bidx") // never taken from the wire
				v, ok := values[c]
				if !ok {
					continue
				}
				plain := ""
				if v != nil && *v != "" {
					plain = *v
					if pii.IsSealed(plain) {
						if r.Keys == nil || r.Keys.Local == nil {
							return nil, errors.New("sync: sealed columns but no keys")
						}
						if transit == nil {
							var err error
							if transit, err = r.Keys.Transit(ctx, hospital); err != nil {
								return nil, fmt.Errorf("sync: transit key: %w", err)
							}
						}
						var err error
						if plain, err = transit.Open(plain); err != nil {
							return nil, reject("%s %s: column %s does not open with the hospital's transit key: %v", e.Name, row.ID, c, err)
						}
					}
				}
				if r.Keys == nil || r.Keys.Local == nil {
					return nil, errors.New("sync: sealed columns but no keys")
				}
				local, err := r.Keys.Local.Seal(plain)
				if err != nil {
					return nil, err
				}
				values[c] = &local
				if e.indexed[c] {
					idx := r.Keys.Local.Index(plain)
					values[c+"_bidx"] = &idx
				}
			}
			rows[j].Values = values
		}
		if rows == nil {
			continue
		}
		if !copied {
			out = append([]*Envelope(nil), envs...)
			copied = true
		}
		c := *env
		c.Rows = rows
		out[i] = &c
	}
	return out, nil
}
