package recorder

import (
	"context"
	"database/sql"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/emmansun/gmsm/sm3"

	"ihos"
)

// sourceFile is an open file on a recorder.
type sourceFile interface {
	io.Reader
	io.Seeker
	io.Closer
}

func openFile(path string) (sourceFile, error) { return os.Open(path) }

// chunk is the size of one read from the source.
const chunk = 1 << 20

// partDir holds copies in progress, inside the store so the final rename
// never crosses a file system.
const partDir = ".partial"

// sourceKey names a source file across insertions of a stick (whose mount
// point may change): device, path on the device, size and time.
func sourceKey(c clip) string {
	sum := sm3.Sum([]byte(c.Device + "\x00" + c.Rel + "\x00" + strconv.FormatInt(c.Size, 10) + "\x00" + strconv.FormatInt(c.ModTime.UnixNano(), 10)))
	return hex.EncodeToString(sum[:])
}

// copied is the result of a finished, verified copy.
type copied struct {
	SM3  string
	Part string // the verified .part file, to be moved into the store
}

// copyClip copies c into a .part file while hashing it, resuming from the
// journal when an earlier copy of the same source was interrupted. read
// reports the bytes read from the source as they are read. The result is
// verified: the .part file is re-read and must have the source's size and SM3,
// and the source must not have changed meanwhile.
func (s *Service) copyClip(ctx context.Context, c clip, read func(n int64)) (copied, error) {
	key := sourceKey(c)
	part := filepath.Join(s.Dir, partDir, key+".part")
	if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
		return copied{}, err
	}
	h := sm3.New()
	offset, err := s.resumePoint(ctx, key, part, h)
	if err != nil {
		return copied{}, err
	}
	out, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return copied{}, err
	}
	defer out.Close()
	// Bytes past the journal's offset may not have reached the disk intact.
	if err := out.Truncate(offset); err != nil {
		return copied{}, err
	}
	if _, err := out.Seek(offset, io.SeekStart); err != nil {
		return copied{}, err
	}
	open := s.openSource
	if open == nil {
		open = openFile
	}
	src, err := open(c.Path)
	if err != nil {
		return copied{}, ihos.Errorf(ihos.EUnavailable, "无法读取 %s：%v", c.Rel, err)
	}
	defer src.Close()
	if _, err := src.Seek(offset, io.SeekStart); err != nil {
		return copied{}, ihos.Errorf(ihos.EUnavailable, "无法读取 %s：%v", c.Rel, err)
	}
	// save makes the bytes so far durable and records how far the copy got.
	save := func() error {
		if err := out.Sync(); err != nil {
			return err
		}
		return s.saveJournal(ctx, key, c, offset, h)
	}
	buf := make([]byte, chunk)
	sinceSave := int64(0)
	for offset < c.Size {
		if err := ctx.Err(); err != nil {
			save()
			return copied{}, err
		}
		want := min(int64(len(buf)), c.Size-offset)
		n, rerr := io.ReadFull(src, buf[:want])
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return copied{}, err
			}
			h.Write(buf[:n])
			offset += int64(n)
			sinceSave += int64(n)
			if read != nil {
				read(int64(n))
			}
		}
		if rerr != nil {
			// The stick was pulled or the file is unreadable: keep what was
			// copied for the next attempt.
			if serr := save(); serr != nil {
				return copied{}, serr
			}
			if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
				return copied{}, ihos.Errorf(ihos.EConflict, "%s 在复制过程中变短了（记录仪上的文件被改动）", c.Rel)
			}
			return copied{}, ihos.Errorf(ihos.EUnavailable, "读取 %s 中断（已复制 %d 字节，下次导入时从此处继续）：%v", c.Rel, offset, rerr)
		}
		if sinceSave >= s.checkpoint() {
			if err := save(); err != nil {
				return copied{}, err
			}
			sinceSave = 0
		}
	}
	if err := out.Sync(); err != nil {
		return copied{}, err
	}
	if err := out.Close(); err != nil {
		return copied{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// The source must be the file that was scanned, end to end.
	if fi, err := os.Stat(c.Path); err != nil || fi.Size() != c.Size || !fi.ModTime().UTC().Equal(c.ModTime) {
		s.dropCopy(ctx, key, part)
		return copied{}, ihos.Errorf(ihos.EConflict, "%s 在复制过程中被改动，已放弃本次复制", c.Rel)
	}
	// Verify the copy as it is on disk.
	got, n, err := hashFile(part)
	if err != nil {
		return copied{}, err
	}
	if n != c.Size || got != sum {
		s.dropCopy(ctx, key, part)
		return copied{}, ihos.Errorf(ihos.EInternal, "%s 复制后校验失败（长度 %d/%d 或 SM3 不符），请重新导入", c.Rel, n, c.Size)
	}
	return copied{SM3: sum, Part: part}, nil
}

// resumePoint returns where the copy of key continues, restoring h to the
// SM3 state at that offset; 0 with h fresh when there is nothing to resume.
func (s *Service) resumePoint(ctx context.Context, key, part string, h hash.Hash) (int64, error) {
	var copiedBytes int64
	var state string
	err := s.DB.QueryRowContext(ctx, `SELECT copied, sm3_state FROM recording_copies WHERE source_key = ?`, key).Scan(&copiedBytes, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(part)
	if err != nil || fi.Size() < copiedBytes {
		return 0, nil // the .part file is gone or short: start again
	}
	b, err := hex.DecodeString(state)
	if err != nil || h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b) != nil {
		h.Reset()
		return 0, nil
	}
	return copiedBytes, nil
}

func (s *Service) saveJournal(ctx context.Context, key string, c clip, offset int64, h hash.Hash) error {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("recorder: save SM3 state: %w", err)
	}
	now := ihos.FormatTime(s.now())
	// Saved even when ctx was cancelled: that is when it matters.
	ctx = context.WithoutCancel(ctx)
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE recording_copies SET copied = ?, sm3_state = ?, updated_at = ? WHERE source_key = ?`,
			offset, hex.EncodeToString(state), now, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO recording_copies (source_key, source_path, size, mtime, copied, sm3_state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			key, ihos.Truncate(c.Path, 1000), c.Size, ihos.FormatTime(c.ModTime), offset, hex.EncodeToString(state), now)
		return err
	})
}

// dropCopy forgets a copy: its journal row and its .part file.
func (s *Service) dropCopy(ctx context.Context, key, part string) {
	os.Remove(part)
	ctx = context.WithoutCancel(ctx)
	s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM recording_copies WHERE source_key = ?`, key)
		return err
	})
}

// hashFile returns the SM3 (hex) and length of a file.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return hashReader(f)
}

func hashReader(r io.Reader) (string, int64, error) {
	h := sm3.New()
	n, err := io.CopyBuffer(h, r, make([]byte, chunk))
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// hashSource hashes a source file without copying it, reporting bytes read.
func (s *Service) hashSource(ctx context.Context, c clip, read func(n int64)) (string, error) {
	open := s.openSource
	if open == nil {
		open = openFile
	}
	src, err := open(c.Path)
	if err != nil {
		return "", ihos.Errorf(ihos.EUnavailable, "无法读取 %s：%v", c.Rel, err)
	}
	defer src.Close()
	h := sm3.New()
	buf := make([]byte, chunk)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := src.Read(buf)
		h.Write(buf[:n])
		if read != nil && n > 0 {
			read(int64(n))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", ihos.Errorf(ihos.EUnavailable, "读取 %s 中断：%v", c.Rel, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
