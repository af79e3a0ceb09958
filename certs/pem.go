package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// PEM block types.
const (
	pemCert       = "CERTIFICATE"
	pemCSR        = "CERTIFICATE REQUEST"
	pemCSRLegacy  = "NEW CERTIFICATE REQUEST" // some older tools
	pemPKCS8      = "PRIVATE KEY"
	pemECKey      = "EC PRIVATE KEY"
	pemRSAKey     = "RSA PRIVATE KEY"
	pemECParams   = "EC PARAMETERS" // emitted by `openssl ecparam -genkey`; skipped
	keyFileMode   = 0o600
	certFileMode  = 0o644
	maxPEMFileLen = 1 << 20
)

// WriteFile writes data to path atomically: it writes a temporary file in the same
// directory, syncs it, sets perm, and renames it over path, so a crash or power loss
// leaves either the old file or the new one, never a torn one. The parent directory
// is created (0700) if missing.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm, false)
}

// CreateFile is WriteFile for a file that must not exist yet: when path exists
// it fails with an error wrapping os.ErrExist and leaves the file alone, so two
// processes creating the same key at once cannot overwrite each other's.
func CreateFile(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm, true)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode, exclusive bool) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: create directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		os.Remove(tmp) // after a rename or link this removes nothing or only the temporary name
	}()
	// CreateTemp makes the file 0600, so key bytes are never readable by others,
	// not even briefly; widen (for certificates) only after the write.
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("certs: sync %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("certs: chmod %s: %w", path, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if exclusive {
		if err = os.Link(tmp, path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("certs: %s: %w", path, os.ErrExist)
			}
			return fmt.Errorf("certs: write %s: %w", path, err)
		}
	} else if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable; best effort (not supported on Windows).
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// WriteKeyFile writes a PEM private key atomically with mode 0600.
func WriteKeyFile(path string, keyPEM []byte) error { return WriteFile(path, keyPEM, keyFileMode) }

// WriteCertFile writes a PEM certificate atomically with mode 0644.
func WriteCertFile(path string, certPEM []byte) error { return WriteFile(path, certPEM, certFileMode) }

// ReadCertFile reads a PEM certificate file and returns the first certificate in
// it and the file's bytes.
func ReadCertFile(path string) (*x509.Certificate, []byte, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, nil, err
	}
	c, err := ParseCertPEM(b)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	return c, b, nil
}

// ReadKeyFile reads a PEM private key file and returns the key and the file's
// bytes. Outside Windows it refuses a key file that group or others can read or
// write (it must be 0600 or stricter), as ssh does.
func ReadKeyFile(path string) (crypto.Signer, []byte, error) {
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, nil, fmt.Errorf("certs: read key: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, nil, fmt.Errorf("certs: key file %s has mode %04o; it must be 0600 (chmod 600 %s)", path, fi.Mode().Perm(), path)
		}
	}
	b, err := readSmall(path)
	if err != nil {
		return nil, nil, err
	}
	k, err := ParseKeyPEM(b)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	return k, b, nil
}

func readSmall(path string) ([]byte, error) { return ReadFileLimit(path, maxPEMFileLen) }

// ReadFileLimit reads a file that must not exceed limit bytes (keys,
// certificates, CRLs): a huge or endless file is an error, not an
// out-of-memory.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("certs: read: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("certs: read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("certs: %s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// EncodeCertPEM returns the PEM encoding of a DER certificate.
func EncodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der})
}

// EncodeKeyPEM returns key as PKCS#8 PEM ("PRIVATE KEY").
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// ParseCertPEM parses the first CERTIFICATE block of b.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if blk.Type != pemCert {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return c, nil
	}
}

// ParseKeyPEM parses a PEM private key: PKCS#8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE
// KEY") or PKCS#1 ("RSA PRIVATE KEY"). Encrypted keys are not supported.
func ParseKeyPEM(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key block")
		}
		if _, enc := blk.Headers["Proc-Type"]; enc {
			return nil, errors.New("encrypted PEM private keys are not supported")
		}
		var (
			k   any
			err error
		)
		switch blk.Type {
		case pemECParams:
			continue
		case pemPKCS8:
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case pemECKey:
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case pemRSAKey:
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
}
