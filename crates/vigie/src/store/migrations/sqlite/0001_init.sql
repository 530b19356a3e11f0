-- Vigie schema v1, SQLite dialect. Ids are allocated by the single writer (see ARCHITECTURE.md),
-- so every table has a plain integer key. JSON documents are TEXT; times are epoch milliseconds.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    severity INTEGER NOT NULL,
    asset TEXT,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    extra TEXT
);
CREATE INDEX events_by_client ON events (client_id, id);
CREATE INDEX events_by_client_time ON events (client_id, time_ms);

CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX incidents_by_client ON incidents (client_id, status, id);
CREATE INDEX incidents_by_status ON incidents (status, id);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    incident_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    severity INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX alerts_by_client ON alerts (client_id, id);
CREATE INDEX alerts_by_incident ON alerts (incident_id, id);

CREATE TABLE timeline (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline (incident_id, id);

CREATE TABLE changes (
    seq INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX changes_by_client ON changes (client_id, seq);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    client_id TEXT,
    hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);

CREATE TABLE estate_objects (
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, client_id, object_id)
);
