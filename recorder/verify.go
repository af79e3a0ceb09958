package recorder

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"ihos"
	"ihos/internal/audit"
)

// VerifyResult counts what a Verify pass found.
type VerifyResult struct {
	Checked  int `json:"checked"`
	OK       int `json:"ok"`
	Tampered int `json:"tampered"`
	Missing  int `json:"missing"`
}

// Verify re-hashes up to limit stored files (all when limit <= 0), those
// checked longest ago first, and compares each with the SM3 recorded at
// import. A changed file is marked tampered and a vanished one missing, each
// with an audit entry; a file that matches again after an alarm is marked ok
// again (also audited), since the alarm history stays in the audit log.
// Because the order is by last check, a pass cut short continues where it
// stopped on the next call.
func (s *Service) Verify(ctx context.Context, limit int) (VerifyResult, error) {
	var res VerifyResult
	q := `SELECT id, sm3, size, stored_path, status FROM recordings WHERE status <> 'deleted' ORDER BY checked_at, id`
	var args []any
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return res, err
	}
	type item struct {
		id, sum, stored, status string
		size                    int64
	}
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.id, &it.sum, &it.size, &it.stored, &it.status); err != nil {
			rows.Close()
			return res, err
		}
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		got, n, err := hashFile(s.path(it.stored))
		status, summary := StatusOK, ""
		switch {
		case errors.Is(err, os.ErrNotExist):
			status, summary = StatusMissing, "记录仪录像文件丢失："+it.stored
			res.Missing++
		case err != nil:
			return res, fmt.Errorf("recorder: verify %s: %w", it.stored, err)
		case got != it.sum || n != it.size:
			status, summary = StatusTampered, fmt.Sprintf("记录仪录像被篡改：%s 的 SM3 与导入时不一致（现为 %s…，长度 %d）", it.stored, got[:16], n)
			res.Tampered++
		default:
			res.OK++
			if it.status != StatusOK && it.status != StatusSuspect {
				summary = "记录仪录像复核一致，恢复正常：" + it.stored
			}
		}
		if status == StatusOK && it.status == StatusSuspect {
			status = StatusSuspect // the stored file is intact; suspect is about the recorder's copy
		}
		res.Checked++
		now := ihos.FormatTime(s.now())
		err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE recordings SET status = ?, checked_at = ? WHERE id = ?`, status, now, it.id); err != nil {
				return err
			}
			if status == it.status || summary == "" {
				return nil
			}
			if status != StatusOK {
				slog.WarnContext(ctx, "recorder: integrity alarm", "recording", it.id, "status", status)
			}
			return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "verify_" + status, Resource: "recordings", RecordID: it.id, Summary: summary,
				Before: jsonStatus(it.status), After: jsonStatus(status)})
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func jsonStatus(st string) []byte { return []byte(`{"status":"` + st + `"}`) }

// RunDaily runs the daily upkeep every interval (default 24 h, first a
// minute after start) until ctx ends: Verify over every stored file in
// batches, removal of stale leftovers, and, when AutoPrune is set, Prune.
func (s *Service) RunDaily(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 24 * time.Hour
	}
	t := time.NewTimer(time.Minute) // not in the middle of the start-up
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.verifyAll(ctx)
		if err := s.PruneLeftovers(ctx, s.now()); err != nil {
			slog.WarnContext(ctx, "recorder: prune leftovers", "err", err)
		}
		if s.AutoPrune {
			if n, err := s.Prune(ctx, s.now()); err != nil {
				slog.WarnContext(ctx, "recorder: prune", "err", err)
			} else if n > 0 {
				slog.InfoContext(ctx, "recorder: pruned recordings past retention", "count", n)
			}
		}
		t.Reset(every)
	}
}

// verifyAll checks every stored file once, in batches of 100.
func (s *Service) verifyAll(ctx context.Context) {
	start := ihos.FormatTime(s.now())
	for ctx.Err() == nil {
		res, err := s.Verify(ctx, 100)
		if err != nil {
			slog.WarnContext(ctx, "recorder: verify", "err", err)
			return
		}
		var oldest string
		err = s.DB.QueryRowContext(ctx, `SELECT COALESCE(MIN(checked_at), '') FROM recordings WHERE status <> 'deleted'`).Scan(&oldest)
		if err != nil || res.Checked == 0 || oldest >= start {
			return
		}
	}
}

// Run imports plugged-in recorders (Watch over WatchRoots every 5 s) and
// runs the daily upkeep (RunDaily), until ctx ends.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.Watch(ctx, nil, 0) })
	wg.Go(func() { s.RunDaily(ctx, 0) })
	wg.Wait()
}

var errRetention = ihos.Errorf(ihos.EForbidden, "录像保存期未满三年，不能删除")

// retentionError is the refusal of an early deletion, naming the configured period.
func (s *Service) retentionError() error {
	if years := max(s.RetentionYears, MinRetentionYears); years != MinRetentionYears {
		return ihos.Errorf(ihos.EForbidden, "录像保存期未满 %d 年，不能删除", years)
	}
	return errRetention
}

// Delete removes a recording's file after its retention ended (the row is
// kept, status deleted, for the record). Before retain_until it is refused,
// and so it is while the recording is on legal hold.
func (s *Service) Delete(ctx context.Context, id string) error {
	r, err := s.Recording(ctx, id)
	if err != nil {
		return err
	}
	if r.Status == StatusDeleted {
		return ihos.Errorf(ihos.EConflict, "录像已删除")
	}
	if s.now().Before(r.RetainUntil) {
		return s.retentionError()
	}
	if r.Hold {
		return ihos.Errorf(ihos.EForbidden, "录像处于法律保全（%s），不能删除", r.HoldReason)
	}
	return s.remove(ctx, r, "删除保存期满的记录仪录像："+r.SourceName)
}

func (s *Service) remove(ctx context.Context, r Recording, summary string) error {
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		now := ihos.FormatTime(s.now())
		res, err := tx.ExecContext(ctx, `UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = ? AND status <> 'deleted' AND legal_hold = 0 AND retain_until <= ?`, now, r.ID, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return s.retentionError()
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "delete", Resource: "recordings", RecordID: r.ID, Summary: summary,
			Before: jsonStatus(r.Status), After: jsonStatus(StatusDeleted)})
	})
	if err != nil {
		return err
	}
	// The row says deleted before the file goes: a crash in between leaves
	// an orphan file, never a row pointing at nothing.
	p := s.path(r.StoredPath)
	os.Chmod(p, 0o644)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Prune deletes the files of recordings whose retention ended before now and
// that are not on legal hold, and returns how many it deleted.
func (s *Service) Prune(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+recordingColumns+recordingFrom+` WHERE r.status <> 'deleted' AND r.legal_hold = 0 AND r.retain_until <= ? ORDER BY r.retain_until LIMIT 1000`,
		ihos.FormatTime(now))
	if err != nil {
		return 0, err
	}
	var due []Recording
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		due = append(due, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range due {
		if s.now().Before(r.RetainUntil) { // now was in the future of the service clock
			continue
		}
		if err := s.remove(ctx, r, "清理保存期满的记录仪录像："+r.SourceName); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Leftovers older than this are removed by Prune: copies whose stick never
// came back, uploads never finished.
const staleAfter = 30 * 24 * time.Hour

// PruneLeftovers removes .part files and journal entries of copies not
// resumed, and uploaded files of batches never imported, for staleAfter
// before now. It deletes no recording.
func (s *Service) PruneLeftovers(ctx context.Context, now time.Time) error {
	cutoff := ihos.FormatTime(now.Add(-staleAfter))
	rows, err := s.DB.QueryContext(ctx, `SELECT source_key FROM recording_copies WHERE updated_at < ?`, cutoff)
	if err != nil {
		return err
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, k)
	}
	rows.Close()
	for _, k := range keys {
		s.dropCopy(ctx, k, filepath.Join(s.Dir, partDir, k+".part"))
	}
	rows, err = s.DB.QueryContext(ctx, `SELECT batch FROM recording_uploads GROUP BY batch HAVING MAX(updated_at) < ?`, cutoff)
	if err != nil {
		return err
	}
	var batches []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return err
		}
		batches = append(batches, b)
	}
	rows.Close()
	for _, b := range batches {
		if !batchID.MatchString(b) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.Dir, uploadDir, b)); err != nil {
			return err
		}
		err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM recording_uploads WHERE batch = ?`, b)
			return err
		})
		if err != nil {
			return err
		}
	}
	return rows.Err()
}

// SetHold puts a recording on legal hold (it is then never deleted) or
// lifts the hold; reason is required to set it.
func (s *Service) SetHold(ctx context.Context, id string, hold bool, reason string) error {
	if hold && reason == "" {
		return ihos.Invalid(map[string]string{"reason": "请填写保全原因"})
	}
	if !hold {
		reason = ""
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var old int
		var oldReason string
		err := tx.QueryRowContext(ctx, `SELECT legal_hold, hold_reason FROM recordings WHERE id = ?`+s.DB.ForUpdate(), id).Scan(&old, &oldReason)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "录像不存在")
		}
		if err != nil {
			return err
		}
		v := 0
		summary := "解除记录仪录像的法律保全"
		if hold {
			v, summary = 1, "记录仪录像设为法律保全："+reason
		}
		if _, err := tx.ExecContext(ctx, `UPDATE recordings SET legal_hold = ?, hold_reason = ? WHERE id = ?`, v, ihos.Truncate(reason, 200), id); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "hold", Resource: "recordings", RecordID: id, Summary: summary,
			Before: []byte(fmt.Sprintf(`{"hold":%t}`, old != 0)), After: []byte(fmt.Sprintf(`{"hold":%t}`, hold))})
	})
}
