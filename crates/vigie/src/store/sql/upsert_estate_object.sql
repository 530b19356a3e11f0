INSERT INTO estate_objects (kind, client_id, object_id, body, updated_ms)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (kind, client_id, object_id) DO UPDATE SET
    body = excluded.body,
    updated_ms = excluded.updated_ms
