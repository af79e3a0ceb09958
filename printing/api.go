package printing

import (
	"context"
	_ "embed"
	"net/http"
	"strconv"
	"strings"

	"ihos"
	"ihos/internal/web"
)

// Authorizer checks that the request may use perm and returns the context to
// continue with (the appliance passes node.AuthorizeCLIOr: a console session
// or the local CLI token).
type Authorizer = web.Authorizer

//go:embed templates/live.js
var liveJS []byte

// Routes registers the print queue's JSON API under /api/printing:
// "printing.read" to look, "printing.write" to act. It also serves the
// console page's refresh script.
//
//	GET  /api/printing/printers                 printers with live status and queue depth
//	GET  /api/printing/jobs?printer=&status=&patient=&limit=
//	GET  /api/printing/jobs/{id}
//	POST /api/printing/jobs/{id}/reprint        body {"printer_id": ""} optional: another printer
//	POST /api/printing/jobs/{id}/cancel
//	POST /api/printing/jobs/{id}/confirm        body {"printed": true|false}
//	POST /api/printing/printers/{id}/test       queue a test page
func (s *Service) Routes(mux *http.ServeMux, authorize Authorizer) {
	handle := web.Guard(mux, authorize)
	mux.HandleFunc("GET /api/printing/live.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(liveJS)
	})
	handle("GET /api/printing/printers", "printing.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		ps, err := s.Printers(ctx)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"printers": ps})
		return nil
	})
	handle("GET /api/printing/jobs", "printing.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		f := JobFilter{PrinterID: strings.TrimSpace(q.Get("printer")), Status: strings.TrimSpace(q.Get("status")), PatientRef: strings.TrimSpace(q.Get("patient"))}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n <= 0 {
				return ihos.Invalid(map[string]string{"limit": "条数应为正整数"})
			}
			f.Limit = n
		}
		jobs, err := s.Jobs(ctx, f)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
		return nil
	})
	handle("GET /api/printing/jobs/{id}", "printing.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		j, err := s.Job(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, j)
		return nil
	})
	handle("POST /api/printing/jobs/{id}/reprint", "printing.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			PrinterID string `json:"printer_id"`
		}
		if err := web.DecodeOptionalJSON(r, &req); err != nil {
			return err
		}
		j, err := s.ReprintOn(ctx, r.PathValue("id"), req.PrinterID, ActorSource(ctx))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, j)
		return nil
	})
	handle("POST /api/printing/jobs/{id}/cancel", "printing.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if err := s.Cancel(ctx, r.PathValue("id")); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"status": StatusCancelled})
		return nil
	})
	handle("POST /api/printing/jobs/{id}/confirm", "printing.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Printed *bool `json:"printed"`
		}
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Printed == nil {
			return ihos.Invalid(map[string]string{"printed": "请说明是否已打印（printed: true 或 false）"})
		}
		if err := s.Confirm(ctx, r.PathValue("id"), *req.Printed); err != nil {
			return err
		}
		status := StatusQueued
		if *req.Printed {
			status = StatusPrinted
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"status": status})
		return nil
	})
	handle("POST /api/printing/printers/{id}/test", "printing.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		j, err := s.TestPrint(ctx, r.PathValue("id"), ActorSource(ctx))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, j)
		return nil
	})
}
