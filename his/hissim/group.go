package hissim

import (
	"context"
	"database/sql"
	stdsync "sync"
)

// committer runs the write transactions of concurrent message handlers
// together: the handlers that are waiting when a commit starts share one
// SQLite transaction and so one fsync, as a real HIS database's group commit
// does. Each handler's work runs inside its own savepoint, so a handler that
// fails (or refuses its message) rolls back only its own changes.
type committer struct {
	db   *sql.DB
	reqs chan *groupReq
	wg   stdsync.WaitGroup
}

type groupReq struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

// maxGroup bounds how many handlers share a commit.
const maxGroup = 64

func newCommitter(db *sql.DB) *committer {
	c := &committer{db: db, reqs: make(chan *groupReq)}
	c.wg.Go(c.run)
	return c
}

// Do runs fn in a shared write transaction and returns once it has committed
// (or fn's own error, with fn's changes rolled back).
func (c *committer) Do(ctx context.Context, fn func(tx *sql.Tx) error) error {
	r := &groupReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

// close stops the committer after the handlers have stopped.
func (c *committer) close() {
	close(c.reqs)
	c.wg.Wait()
}

func (c *committer) run() {
	for r := range c.reqs {
		batch := []*groupReq{r}
	gather:
		for len(batch) < maxGroup {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		c.commit(batch)
	}
}

func (c *committer) commit(batch []*groupReq) {
	errs := make([]error, len(batch))
	tx, err := c.db.BeginTx(context.Background(), nil)
	if err == nil {
		for i, r := range batch {
			if _, err = tx.Exec(`SAVEPOINT handler`); err != nil {
				break
			}
			if errs[i] = r.fn(tx); errs[i] != nil {
				if _, err = tx.Exec(`ROLLBACK TO handler`); err != nil {
					break
				}
			}
			if _, err = tx.Exec(`RELEASE handler`); err != nil {
				break
			}
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	for i, r := range batch {
		if err != nil && errs[i] == nil {
			errs[i] = err
		}
		r.done <- errs[i]
	}
}
