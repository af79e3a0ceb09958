package appliance

import (
	"context"
	"database/sql"

	"ihos/billpay"
	"ihos/sync"
)

// startBillpay starts the 诊间支付 poster: every paid outpatient bill (a
// payment replicated from the cloud, with its items) is posted to the HIS
// through the HIS queue, and every refund of one credited; the postings
// replicate back to the cloud. It runs until ctx ends (Close waits for it).
func (a *App) startBillpay(ctx context.Context, hospital string) *billpay.Poster {
	p := &billpay.Poster{DB: a.Node.DB, HIS: a.HIS, Hospital: hospital, AfterCommit: a.Link.Kick,
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, hospital, refs...)
		}}
	a.devices.Go(func() { p.Run(ctx) })
	return p
}
