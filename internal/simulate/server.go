package simulate

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server serves a simulator's HTTP handler on its listener. The simulator
// listens itself (it needs its URL before it builds its handler) and hands
// the listener to Serve.
type Server struct {
	srv  *http.Server
	done chan struct{} // closed when Serve returns
}

// Serve serves h on l in the background until Close; an error other than
// the close is logged.
func Serve(l net.Listener, h http.Handler, log *slog.Logger) *Server {
	s := &Server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "err", err)
		}
	}()
	return s
}

// Close stops the server, giving requests in flight 5 s to finish, and
// waits until it has stopped.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}
