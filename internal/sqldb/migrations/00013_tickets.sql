-- Ticket templates (package tickets, docs in tickets/tickets.go). Staff edit
-- the template of each ticket kind in the console; a kind without a row, or
-- with an empty source, prints with the built-in default. Every save and
-- reset is kept in ticket_template_versions, which is never deleted.

-- +goose Up
CREATE TABLE ticket_templates (
    kind        VARCHAR(32)  NOT NULL PRIMARY KEY,
    source      TEXT         NOT NULL, -- '' = the built-in default
    version     INTEGER      NOT NULL,
    updated_by  VARCHAR(64)  NOT NULL DEFAULT '',
    updated_at  VARCHAR(27)  NOT NULL
);

CREATE TABLE ticket_template_versions (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,
    kind        VARCHAR(32)  NOT NULL,
    version     INTEGER      NOT NULL,
    action      VARCHAR(16)  NOT NULL, -- save, reset
    source      TEXT         NOT NULL, -- '' = the built-in default
    created_by  VARCHAR(64)  NOT NULL DEFAULT '',
    created_at  VARCHAR(27)  NOT NULL
);
CREATE UNIQUE INDEX ticket_template_versions_kind ON ticket_template_versions (kind, version);

-- +goose Down
DROP TABLE ticket_template_versions;
DROP TABLE ticket_templates;
