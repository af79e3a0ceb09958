package sqldb

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pressly/goose/v3"
)

// migrations holds the schema, one numbered file per change, embedded in the
// binary so an upgrade is just a new binary. Files are never edited once released;
// a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

func migrate(ctx context.Context, db *DB) error {
	dialect := goose.DialectSQLite3
	if db.Engine == MySQL {
		dialect = goose.DialectMySQL
		if err := ensureUTF8MB4(ctx, db); err != nil {
			return err
		}
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// The write pool is used so that on SQLite migrations hold the single writer.
	p, err := goose.NewProvider(dialect, db.w, fsys)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// ensureUTF8MB4 makes the database's default character set utf8mb4, so tables the
// migrations create hold Chinese text whatever the server's default (MariaDB still
// defaults to latin1 in many packages).
func ensureUTF8MB4(ctx context.Context, db *DB) error {
	var name, charset string
	err := db.QueryRowContext(ctx,
		`SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()`).
		Scan(&name, &charset)
	if err != nil {
		return fmt.Errorf("mysql: no database selected in the DSN: %w", err)
	}
	if strings.EqualFold(charset, "utf8mb4") {
		return nil
	}
	_, err = db.ExecContext(ctx, "ALTER DATABASE `"+strings.ReplaceAll(name, "`", "``")+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	if err != nil {
		return fmt.Errorf("mysql: database %s uses %s; set it to utf8mb4 (ALTER DATABASE ... CHARACTER SET utf8mb4): %w", name, charset, err)
	}
	return nil
}
