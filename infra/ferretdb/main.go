// Command ferretdb-local serves the MongoDB wire protocol on loopback for local development and
// tests, storing into SQLite (or PostgreSQL) through FerretDB's embeddable package.
//
// It exists because `go install github.com/FerretDB/FerretDB/cmd/ferretdb` panics at start-up:
// when FerretDB is the main module its build/version package reads a version.txt that the
// published module does not contain. Embedding the package from our own main module skips that.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof-addr
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to serve the MongoDB wire protocol on")
	handler := flag.String("handler", "sqlite", "storage backend: sqlite or postgresql")
	dataDir := flag.String("data-dir", ".cache/ferretdb-data", "directory for the SQLite files (sqlite handler)")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL URL in pgx syntax (postgresql handler)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	gcPercent := flag.Int("gc-percent", 400, "Go GC target percentage (GOGC); FerretDB allocates heavily per document, and memory is cheaper here than CPU")
	pprofAddr := flag.String("pprof-addr", "", "if set, serve Go's /debug/pprof/ on this loopback address (profiling only)")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail("bad -log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	var sqliteDir string
	cfg := ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Handler:  *handler,
		Logger:   logger,
	}
	switch *handler {
	case "sqlite":
		dir, err := filepath.Abs(*dataDir)
		if err != nil {
			fail("bad -data-dir: %v", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fail("cannot create -data-dir: %v", err)
		}
		// FerretDB wants a file: URL naming an existing directory with a trailing slash.
		// synchronous(normal): in WAL mode a commit survives the process being killed but skips the
		// fsync per commit (a power cut may lose the last commits) — the local stand-in's trade, since
		// SQLite commits one at a time and each waited for the disk.
		cfg.SQLiteURL = "file:" + strings.TrimSuffix(dir, "/") + "/?_pragma=synchronous(normal)"
		sqliteDir = dir
	case "postgresql":
		if *pgURL == "" {
			fail("-postgresql-url is required with -handler=postgresql")
		}
		cfg.PostgreSQLURL = *pgURL
	default:
		fail("unknown -handler %q (want sqlite or postgresql)", *handler)
	}

	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	if *pprofAddr != "" {
		if host, _, err := net.SplitHostPort(*pprofAddr); err != nil || !net.ParseIP(host).IsLoopback() {
			fail("-pprof-addr must be a loopback address with a port, e.g. 127.0.0.1:6061")
		}
		go func() { logger.Error("pprof server stopped", "error", http.ListenAndServe(*pprofAddr, nil)) }()
	}

	f, err := ferretdb.New(&cfg)
	if err != nil {
		fail("ferretdb.New: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if sqliteDir != "" {
		go maintainIDIndexes(ctx, sqliteDir, 250*time.Millisecond, logger)
	}

	logger.Warn("ferretdb-local listening", "address", *listen, "handler", *handler)
	f.Run(ctx)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ferretdb-local: "+format+"\n", args...)
	os.Exit(2)
}
