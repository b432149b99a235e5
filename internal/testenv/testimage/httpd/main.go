// Command httpd is the app stand-in inside the test image: GET /health answers
// {"status":"ok","version":"$VERSION"} on :$PORT (default 5000), like the real app, in a static
// binary small enough that pulls in tests take milliseconds. It exits at once on SIGTERM, so
// `docker stop` measures the platform, not a slow app.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	version := os.Getenv("VERSION")
	port := os.Getenv("PORT")
	if port == "" {
		port = "5000"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok", "version": version})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "deploydrill test image %s\n", version)
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux}

	// As PID 1 in a container, a process gets no default SIGTERM handler: handle it explicitly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
