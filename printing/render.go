package printing

import (
	"context"
	"time"

	"ihos/tickets"
)

// render renders t with the hospital's templates (the built-in defaults
// without a tickets.Store).
func (s *Service) render(ctx context.Context, t tickets.Ticket, f tickets.Format) ([]byte, error) {
	if s.Tickets != nil {
		return s.Tickets.Render(ctx, t, f)
	}
	return tickets.Render(t, f)
}

// testPage renders the test page for p: its name, format, Chinese text and a
// QR code, so one page shows that the printer, the paper width and the code
// page are right.
func (s *Service) testPage(ctx context.Context, p Printer) ([]byte, error) {
	hospital := s.Hospital
	if hospital == "" && s.Tickets != nil {
		hospital = s.Tickets.Hospital
	}
	t := tickets.TestPage{Hospital: hospital, Printer: p.Name, PaperMM: p.PaperMM, CodePage: p.CodePage, PrintedAt: time.Now()}
	return s.render(ctx, t, p.Format())
}
