-- Vigie schema v3, SQLite dialect: the notification outbox and delivery log. A row is
-- inserted in the same transaction as the decision to notify, rendered once (the body holds
-- the exact bytes to send and every attempt); the deliverer sends the rows whose
-- next_attempt_ms has passed and clears it once delivered. The body is the truth; the
-- columns index it.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    incident_id INTEGER,
    status TEXT NOT NULL,
    next_attempt_ms INTEGER,
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX notifications_by_client ON notifications (client_id, id);
CREATE INDEX notifications_by_incident ON notifications (incident_id, id);
CREATE INDEX notifications_due ON notifications (next_attempt_ms) WHERE next_attempt_ms IS NOT NULL;
