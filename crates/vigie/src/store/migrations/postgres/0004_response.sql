-- Vigie schema v4 (postgres): what the responder keeps across a restart. Bodies are the truth
-- (JSON of the Rust records); the columns index them.
-- Escalation of each incident: its policy, step, round and when the next step is due.
CREATE TABLE escalations (
    incident_id BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    next_at_ms BIGINT,
    body TEXT NOT NULL
);
CREATE INDEX escalations_by_client ON escalations (client_id, incident_id);
-- Crises opened by the crisis triggers.
CREATE TABLE crises (
    id BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX crises_by_client ON crises (client_id, id);
-- The current health of each business service, and its history (one row per change).
CREATE TABLE service_health (
    client_id TEXT NOT NULL,
    service TEXT NOT NULL,
    status TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (client_id, service)
);
CREATE TABLE service_history (
    id BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL,
    service TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX service_history_by_service ON service_history (client_id, service, id);
-- Silences created through the API (those of the estate live in the estate).
CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    ends_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX silences_by_client ON silences (client_id, id);
-- Small documents of the responder (the crisis triggers' memory of what fired).
CREATE TABLE response_state (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
