-- Vigie schema v2, SQLite dialect: the state of every check (its `CheckStatus` and what the
-- API shows of it), so that soft/hard states, attempts, acknowledgements and downtimes
-- survive a restart. The body is the truth; the columns index it.
CREATE TABLE checks (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    asset TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX checks_by_client ON checks (client_id, id);
