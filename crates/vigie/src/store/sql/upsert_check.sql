INSERT INTO checks (id, client_id, asset, state, updated_ms, body)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET
    client_id = excluded.client_id,
    asset = excluded.asset,
    state = excluded.state,
    updated_ms = excluded.updated_ms,
    body = excluded.body
