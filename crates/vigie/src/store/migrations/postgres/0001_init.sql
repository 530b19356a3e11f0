-- Vigie schema v1, PostgreSQL dialect. Ids are allocated by the single writer (see ARCHITECTURE.md),
-- so every table has a plain integer key. JSON documents are TEXT; times are epoch milliseconds.
CREATE TABLE events (
    id BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    severity BIGINT NOT NULL,
    asset TEXT,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    extra TEXT
);
CREATE INDEX events_by_client ON events (client_id, id);
CREATE INDEX events_by_client_time ON events (client_id, time_ms);

CREATE TABLE incidents (
    id BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    priority BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX incidents_by_client ON incidents (client_id, status, id);
CREATE INDEX incidents_by_status ON incidents (status, id);

CREATE TABLE alerts (
    id BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL,
    incident_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    severity BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX alerts_by_client ON alerts (client_id, id);
CREATE INDEX alerts_by_incident ON alerts (incident_id, id);

CREATE TABLE timeline (
    id BIGINT PRIMARY KEY,
    incident_id BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline (incident_id, id);

CREATE TABLE changes (
    seq BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
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
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

CREATE TABLE estate_objects (
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, client_id, object_id)
);
