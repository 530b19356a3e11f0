//! The OpenAPI 3.1 description of the HTTP API, served at `/api/openapi.json`.

use axum::Json;
use serde_json::{Value, json};

pub fn document() -> Value {
    json!({"openapi": "3.1.0", "info": {"title": "Vigie API", "version": env!("CARGO_PKG_VERSION")}, "paths": {}})
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
