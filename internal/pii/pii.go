// Package pii seals personal data (phone numbers, ID card numbers) before it is
// stored, as the personal-information rules for medical data require, and masks it
// for display.
//
// Values are encrypted with SM4-GCM (the national standard block cipher) under a
// key that lives in the service's data dir, never in the database, so a copied
// database file alone reveals nothing. An exact-match search still works through a
// blind index: HMAC-SM3 of the normalised value under a second key.
package pii

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

// prefix marks a sealed value and its format version, so a later key rotation or
// algorithm change can tell old values apart.
const prefix = "sm4gcm1:"

// Sealer encrypts and decrypts personal data and computes blind indexes.
type Sealer struct {
	aead   cipher.AEAD
	macKey []byte
}

// New returns a Sealer for a 32-byte key: 16 bytes of SM4 key and 16 of HMAC key.
func New(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("pii: key must be 32 bytes")
	}
	block, err := sm4.NewCipher(key[:16])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, macKey: append([]byte(nil), key[16:]...)}, nil
}

// LoadOrCreate reads the key file at path, creating it with a fresh random key
// (mode 0600) on first start. Losing this file makes sealed data unreadable, so
// the operator docs tell IT to back it up with the database.
func LoadOrCreate(path string) (*Sealer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("pii: write key: %w", err)
		}
		return New(key)
	}
	if err != nil {
		return nil, fmt.Errorf("pii: read key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("pii: key file %s is not hex: %w", path, err)
	}
	return New(key)
}

// Seal encrypts s. The empty string stays empty, so "not given" stays visible.
func (p *Sealer) Seal(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	nonce := make([]byte, p.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := p.aead.Seal(nonce, nonce, []byte(s), nil)
	return prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// IsSealed reports whether s is a value made by Seal (of any key).
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// Open decrypts a value made by Seal.
func (p *Sealer) Open(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", errors.New("pii: value is not sealed")
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(b) < p.aead.NonceSize() {
		return "", errors.New("pii: sealed value is corrupt")
	}
	n := p.aead.NonceSize()
	plain, err := p.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return "", errors.New("pii: sealed value fails authentication (wrong key or tampered)")
	}
	return string(plain), nil
}

// Index returns the blind index of s: equal values give equal indexes, and the
// index reveals nothing without the key. Case and surrounding space are ignored
// (an ID number's final X may be typed either way).
func (p *Sealer) Index(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return ""
	}
	m := hmac.New(sm3.New, p.macKey)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// Mask shows the first keep and last keep runes of s and stars in between:
// 13812345678 -> 138****5678, an ID number -> 110105**********12.
func Mask(s string, keepHead, keepTail int) string {
	n := utf8.RuneCountInString(s)
	if n <= keepHead+keepTail {
		return strings.Repeat("*", n)
	}
	r := []rune(s)
	return string(r[:keepHead]) + strings.Repeat("*", n-keepHead-keepTail) + string(r[n-keepTail:])
}
