INSERT INTO alerts (id, client_id, incident_id, status, severity, last_seen_ms, body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET
    incident_id = excluded.incident_id,
    status = excluded.status,
    severity = excluded.severity,
    last_seen_ms = excluded.last_seen_ms,
    body = excluded.body
