package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses ("sqlite")
)

// idLookupExpr is the expression FerretDB 1.24's SQLite backend filters `_id` by (its
// metadata.IDColumn) in every pushed-down find, update, findAndModify and delete.
const idLookupExpr = `_ferretdb_sjson->'$._id'`

// idIndexSuffix names the index this file adds next to FerretDB's own `<table>__id_`.
const idIndexSuffix = "__id_lookup"

// maintainIDIndexes gives every FerretDB table in the SQLite files of dir an index on idLookupExpr,
// checking every `every` until ctx ends.
//
// Why: FerretDB 1.24 creates its unique `_id` index on `_ferretdb_sjson->"_id"`, while its queries
// filter on `_ferretdb_sjson->'$._id'`. SQLite only uses an expression index for the identical
// expression, so every lookup by `_id` scanned (and JSON-parsed) the whole table: O(collection size)
// per read or write. The extra index is plain SQLite, invisible to FerretDB's own index metadata,
// and goes away with its table. See docs/infrastructure.md.
func maintainIDIndexes(ctx context.Context, dir string, every time.Duration, logger *slog.Logger) {
	// What each file looked like when it was last checked: a file whose database and log are unchanged
	// since then has no new table.
	checked := map[string]string{}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		present := map[string]bool{}
		for _, f := range files {
			present[f] = true
			stamp := fileStamp(f) + "|" + fileStamp(f+"-wal")
			if checked[f] == stamp {
				continue
			}
			if n, err := indexFile(ctx, f); err != nil {
				logger.Debug("id index pass failed", "file", filepath.Base(f), "error", err)
				continue
			} else if n > 0 {
				logger.Debug("id lookup indexes created", "file", filepath.Base(f), "tables", n)
			}
			checked[f] = stamp
		}
		for f := range checked {
			if !present[f] {
				delete(checked, f)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// fileStamp is a file's size and modification time, or "" when it does not exist.
func fileStamp(path string) string {
	info, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d@%d", info.Size(), info.ModTime().UnixNano())
}

// indexFile opens one database only for the time of its pass (FerretDB's own connections stay the
// last ones, so closing ours never checkpoints or removes its log), never creates a file (mode=rw: a
// database FerretDB has just dropped stays dropped), and never waits for a lock (busy_timeout 0):
// when FerretDB is busy with the file (creating it, switching it to WAL) the pass gives up at once
// and the next one tries again, so FerretDB never waits on us.
func indexFile(ctx context.Context, path string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(0)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	return indexTables(ctx, db)
}

// indexTables creates the missing lookup indexes of one database; returns how many it created.
func indexTables(ctx context.Context, db *sql.DB) (int, error) {
	rows, err := db.QueryContext(ctx, `SELECT m.name FROM sqlite_master m
		WHERE m.type = 'table' AND m.name NOT LIKE '\_ferretdb\_%' ESCAPE '\'
		AND NOT EXISTS (SELECT 1 FROM sqlite_master i WHERE i.type = 'index' AND i.name = m.name || ?)`, idIndexSuffix)
	if err != nil {
		return 0, err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return 0, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	created := 0
	var firstErr error
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, t+idIndexSuffix, t, idLookupExpr)
		// A failure (the table dropped meanwhile, the file going away) is retried by the next pass.
		if _, err := db.ExecContext(ctx, q); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		created++
	}
	if firstErr != nil {
		return created, firstErr
	}
	return created, nil
}
