INSERT INTO incidents (id, client_id, status, priority, created_ms, updated_ms, body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    priority = excluded.priority,
    updated_ms = excluded.updated_ms,
    body = excluded.body
