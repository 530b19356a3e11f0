//! The OpenAPI 3.1 description of the HTTP API, served at `/api/openapi.json`.
//!
//! Written by hand from the handlers, so it can drift from them; the tests below guard the
//! part a reader relies on most: every route and method that `api/mod.rs` registers is
//! described, every `$ref` resolves, and every `/api/v1` operation asks for the bearer token.
//! Built in small functions because one `json!` literal this large would exceed the macro's
//! recursion limit, and because shared pieces (errors, paging parameters) are written once.

mod perfdata_paths;
mod response_paths;

use axum::Json;
use serde_json::{Map, Value, json};

pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vigie API",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Supervision and incident management for a managed service provider.",
            "description": INFO_DESCRIPTION,
        },
        "tags": [
            {"name": "events", "description": "Ingesting and reading normalised events."},
            {"name": "incidents", "description": "Incidents, their alerts and timeline, and the operator's actions."},
            {"name": "alerts", "description": "Alerts: rule matches deduplicated by fingerprint."},
            {"name": "estate", "description": "Clients and their assets, sites, dependencies, teams and contacts."},
            {"name": "checks", "description": "Supervision: the state of every check, acknowledgements and downtimes."},
            {"name": "tokens", "description": "API tokens (admin only)."},
            {"name": "notifications", "description": "The delivery log: every notification, what it sends and each attempt."},
            {"name": "stream", "description": "The live change feed (server-sent events)."},
            {"name": "service", "description": "Public endpoints: no token needed."},
        ],
        "security": [],
        "paths": paths(),
        "components": {
            "securitySchemes": {"bearer": bearer_scheme()},
            "schemas": schemas(),
            "parameters": parameters(),
            "responses": responses(),
        },
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}

const INFO_DESCRIPTION: &str = "\
JSON over HTTP. Every route under `/api/v1` needs a bearer token \
(`Authorization: Bearer vg_<12 hex>_<32 hex>`); `/healthz`, `/metrics`, `/` and this document \
are public.

**Roles.** A token has one role:
- `admin`: everything, across clients: estate (creating clients and assets, reloading), tokens.
- `operator`: every client's data, the incident actions (acknowledge, resolve, close, comment, \
reassign), and sending events.
- `client`: one client's data only, read-only except for commenting on that client's incidents.
- `ingest`: one client's sources: sending events for that client only.

**Scoping.** `client` and `ingest` tokens are bound to one client. An object of another client \
answers `404 not_found`, exactly as an absent one, so that a token cannot learn that another \
client's object exists; a `client` filter naming another client gives an empty list.

**Errors.** Every error body is `{\"error\": {\"code\", \"message\", \"details\"?}}` (schema \
`Error`); clients branch on `code`, whose values are stable.

**Conventions.** Times are epoch milliseconds, UTC (`*_ms` fields); ids of events, incidents and \
alerts are integers that grow with time. Lists are newest first and paged with `limit` (1 to \
1000, default 100) and `before`: pass the previous page's `next_before`, which is `null` once a \
page comes back shorter than `limit`. Unknown query parameters (on operations that take some) \
and unknown body fields are refused with `400`.";

const ROLE_NOTE_READ_ANY: &str = "Any role; `client` and `ingest` tokens see their own client \
only, and another client's object answers 404.";

// ---- building blocks ----------------------------------------------------------------------

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn parameter(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

fn response(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": json_content(schema)})
}

fn json_request(description: &str, schema: Value) -> Value {
    json!({"description": description, "required": true, "content": json_content(schema)})
}

fn nullable(type_name: &str, description: &str) -> Value {
    json!({"type": [type_name, "null"], "description": description})
}

fn epoch_ms(description: &str) -> Value {
    json!({"type": "integer", "format": "int64", "description": description})
}

fn array_of(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// A page of a newest-first list: `{"<key>": [...], "next_before": id | null}`.
fn page_of(key: &str, item: &str) -> Value {
    json!({
        "type": "object",
        "required": [key, "next_before"],
        "properties": {
            key: array_of(schema(item)),
            "next_before": {
                "type": ["integer", "null"],
                "format": "int64",
                "description": "The `before` of the next page (the last item's id), or null when this page holds fewer than `limit` items.",
            },
        },
    })
}

/// The shared error responses, by status: the component each status refers to.
const ERROR_RESPONSES: [(u16, &str); 9] = [
    (400, "BadRequest"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "NotFound"),
    (409, "Conflict"),
    (413, "PayloadTooLarge"),
    (415, "UnsupportedMediaType"),
    (500, "Internal"),
    (503, "Overloaded"),
];

/// An `/api/v1` operation: the bearer token, and the errors any of them may answer (401 for a
/// bad token, 500 when the store fails) besides `errors`.
fn api_operation(mut operation: Value, errors: &[u16]) -> Value {
    operation["security"] = json!([{"bearer": []}]);
    let responses = operation["responses"]
        .as_object_mut()
        .expect("invariant: every operation is written with its responses");
    for status in errors.iter().chain(&[401, 500]) {
        let (_, name) = ERROR_RESPONSES
            .iter()
            .find(|(known, _)| known == status)
            .expect("invariant: operations list only statuses of ERROR_RESPONSES");
        responses.insert(status.to_string(), response(name));
    }
    operation
}

// ---- paths --------------------------------------------------------------------------------

fn paths() -> Value {
    let mut paths = Map::new();
    let mut add = |path: &str, item: Value| {
        paths.insert(path.to_owned(), item);
    };
    add(
        "/api/v1/events",
        json!({"post": post_events(), "get": list_events()}),
    );
    add("/api/v1/events/{id}", json!({"get": get_event()}));
    add("/api/v1/incidents", json!({"get": list_incidents()}));
    add("/api/v1/incidents/{id}", json!({"get": get_incident()}));
    add(
        "/api/v1/incidents/{id}/timeline",
        json!({"get": get_timeline()}),
    );
    add(
        "/api/v1/incidents/{id}/alerts",
        json!({"get": get_incident_alerts()}),
    );
    add(
        "/api/v1/incidents/{id}/ack",
        json!({"post": incident_action("acknowledge", "Acknowledge an incident", ACKNOWLEDGE)}),
    );
    add(
        "/api/v1/incidents/{id}/resolve",
        json!({"post": incident_action("resolve", "Resolve an incident", RESOLVE)}),
    );
    add(
        "/api/v1/incidents/{id}/close",
        json!({"post": incident_action("close", "Close an incident", CLOSE)}),
    );
    add("/api/v1/incidents/{id}/comment", json!({"post": comment()}));
    add(
        "/api/v1/incidents/{id}/reassign",
        json!({"post": reassign()}),
    );
    add("/api/v1/alerts", json!({"get": list_alerts()}));
    add("/api/v1/alerts/{id}", json!({"get": get_alert()}));
    add(
        "/api/v1/clients",
        json!({"get": list_clients(), "post": create_client()}),
    );
    add("/api/v1/clients/{id}", json!({"get": get_client()}));
    add(
        "/api/v1/clients/{id}/assets",
        json!({"get": list_client_assets(), "post": create_asset()}),
    );
    add("/api/v1/assets", json!({"get": list_assets()}));
    add("/api/v1/checks", json!({"get": list_checks()}));
    add("/api/v1/checks/{id}", json!({"get": get_check()}));
    add(
        "/api/v1/checks/{id}/acknowledge",
        json!({"post": acknowledge_check(), "delete": remove_check_acknowledgement()}),
    );
    add(
        "/api/v1/checks/{id}/downtimes/{downtime}",
        json!({"delete": remove_check_downtime()}),
    );
    add(
        "/api/v1/checks/{id}/downtimes",
        json!({"post": schedule_check_downtime()}),
    );
    add(
        "/api/v1/actions/process-check-result",
        json!({"post": passive_icinga("passive_icinga")}),
    );
    add(
        "/v1/actions/process-check-result",
        json!({"post": passive_icinga("passive_icinga_compat")}),
    );
    add("/api/v1/passive/nrdp", json!({"post": passive_nrdp()}));
    add("/api/v2/alerts", json!({"post": alertmanager_alerts()}));
    add(
        "/api/v1/passive/commands",
        json!({"post": passive_commands()}),
    );
    add("/api/v1/reload", json!({"post": reload()}));
    add(
        "/api/v1/tokens",
        json!({"get": list_tokens(), "post": create_token()}),
    );
    add("/api/v1/tokens/{id}", json!({"delete": revoke_token()}));
    add(
        "/api/v1/notifications",
        json!({"get": list_notifications()}),
    );
    add(
        "/api/v1/notifications/{id}",
        json!({"get": get_notification()}),
    );
    add(
        "/api/v1/notifications/{id}/retry",
        json!({"post": retry_notification()}),
    );
    for (path, item) in perfdata_paths::paths() {
        add(path, item);
    }
    for (path, item) in response_paths::paths() {
        add(path, item);
    }
    add("/api/v1/stream", json!({"get": stream()}));
    add("/api/openapi.json", json!({"get": openapi()}));
    add("/healthz", json!({"get": healthz()}));
    add("/metrics", json!({"get": metrics()}));
    add("/", json!({"get": index()}));
    Value::Object(paths)
}

const POST_EVENTS: &str = "\
Sends a batch of events. The body is either a JSON array of events or NDJSON (one event object \
per line; blank lines are skipped): a body whose first non-blank byte is `[` is read as an \
array, anything else as NDJSON, whatever the `Content-Type` says. A single event object is \
thus a one-line NDJSON batch. Each event needs only `client` and `message` (schema \
`EventInput`).

The batch is all or nothing: every event is checked first, and one bad event rejects the whole \
batch with `400`, whose `details` list each problem by `index` (0-based, JSON array) or `line` \
(1-based, NDJSON) — at most 100 of them; the message gives the total. A `200` means every event \
is committed to disk; their ids are `first_id` to `first_id + accepted - 1`.

Limits: 32 MiB on the wire and 128 MiB once decompressed (`413`); `Content-Encoding: gzip` \
(or `x-gzip`) is accepted, any other encoding but `identity` answers `415`. When the ingest \
queue is full the answer is `503` with `Retry-After: 1`: send the same batch again.

Roles: `admin`, `operator`, and `ingest` (`client` tokens get `403`). An `ingest` token sends \
for its own client only: an event for another client is a problem of the batch (`400`), as is \
an event for a client the estate does not know.

```sh
curl -sS http://127.0.0.1:8080/api/v1/events \\
  -H \"Authorization: Bearer $VIGIE_TOKEN\" \\
  -H 'Content-Type: application/json' \\
  -d '[{\"client\":\"acme-industrie\",\"asset\":\"lyo-erp-db01\",\"severity\":\"critical\",\"message\":\"ERP database down\"}]'
# {\"accepted\":1,\"first_id\":1}

# NDJSON, compressed:
gzip -c events.ndjson | curl -sS http://127.0.0.1:8080/api/v1/events \\
  -H \"Authorization: Bearer $VIGIE_TOKEN\" \\
  -H 'Content-Type: application/x-ndjson' -H 'Content-Encoding: gzip' \\
  --data-binary @-
```";

fn post_events() -> Value {
    let event = json!({
        "client": "acme-industrie",
        "asset": "lyo-erp-db01",
        "severity": "critical",
        "kind": "database",
        "message": "ERP database down",
    });
    let ndjson = "{\"client\":\"acme-industrie\",\"asset\":\"lyo-erp-db01\",\"severity\":\"error\",\"message\":\"/var is 97% full\"}\n\
                  {\"client\":\"acme-industrie\",\"time\":\"2026-11-27T10:15:00Z\",\"message\":\"backup finished\",\"job\":\"nightly\"}\n";
    api_operation(
        json!({
            "tags": ["events"],
            "operationId": "post_events",
            "summary": "Send a batch of events",
            "description": POST_EVENTS,
            "parameters": [{
                "name": "Content-Encoding",
                "in": "header",
                "required": false,
                "description": "`gzip` or `x-gzip` for a gzip body (concatenated gzip members are read as one); absent or `identity` for a plain one.",
                "schema": {"type": "string", "enum": ["gzip", "x-gzip", "identity"]},
            }],
            "requestBody": {
                "required": true,
                "description": "A JSON array of events, or NDJSON: one event per line.",
                "content": {
                    "application/json": {
                        "schema": array_of(schema("EventInput")),
                        "example": [event],
                    },
                    "application/x-ndjson": {
                        "schema": {"type": "string", "description": "One `EventInput` JSON object per line."},
                        "example": ndjson,
                    },
                },
            },
            "responses": {
                "200": {
                    "description": "Every event of the batch is committed.",
                    "content": {"application/json": {
                        "schema": schema("IngestReceipt"),
                        "example": {"accepted": 1, "first_id": 1},
                    }},
                },
                "400": {
                    "description": "The body holds no events, is not valid gzip or JSON, or some of its events are invalid; nothing was accepted. `details` lists each bad event by `index` or `line`.",
                    "content": {"application/json": {
                        "schema": schema("Error"),
                        "example": {"error": {
                            "code": "bad_request",
                            "message": "2 of the batch's events are invalid; nothing was accepted",
                            "details": [
                                {"line": 3, "error": "field `message`: is required"},
                                {"line": 7, "error": "field `client`: unknown client \"acme\""},
                            ],
                        }},
                    }},
                },
            },
        }),
        &[403, 413, 415, 503],
    )
}

fn list_events() -> Value {
    api_operation(
        json!({
            "tags": ["events"],
            "operationId": "list_events",
            "summary": "List events, newest first",
            "description": "Stored events matching every filter given, newest (highest id) first.\n\nRoles: `admin`, `operator`, `client` (its own client only); `ingest` tokens get `403`.",
            "parameters": [
                parameter("ClientFilter"),
                {"name": "asset", "in": "query", "description": "Only events of this asset id.", "schema": {"type": "string"}},
                {"name": "severity", "in": "query", "description": "Minimum severity: `error` returns error, critical, alert and emergency. A `Severity` name or one of its aliases (`err`, `warn`…); an unknown one answers `400`.", "schema": {"type": "string"}, "example": "error"},
                {"name": "source", "in": "query", "description": "Only events from this source (`http`, `syslog`…).", "schema": {"type": "string"}},
                {"name": "kind", "in": "query", "description": "Only events of this kind.", "schema": {"type": "string"}},
                {"name": "since", "in": "query", "description": "Only events whose `time_ms` is at or after this RFC 3339 time.", "schema": {"type": "string", "format": "date-time"}, "example": "2026-11-27T10:00:00Z"},
                {"name": "until", "in": "query", "description": "Only events whose `time_ms` is before this RFC 3339 time.", "schema": {"type": "string", "format": "date-time"}},
                {"name": "q", "in": "query", "description": "Only events whose message contains this text (case-sensitive).", "schema": {"type": "string"}},
                parameter("Before"),
                parameter("Limit"),
            ],
            "responses": {
                "200": json_response("A page of events.", page_of("events", "Event")),
            },
        }),
        &[400, 403],
    )
}

fn get_event() -> Value {
    api_operation(
        json!({
            "tags": ["events"],
            "operationId": "get_event",
            "summary": "Get one event",
            "description": "Roles: `admin`, `operator`, `client` (its own client's events only, another client's answer 404); `ingest` tokens get `403`.",
            "parameters": [parameter("EventId")],
            "responses": {"200": json_response("The event.", schema("Event"))},
        }),
        &[403, 404],
    )
}

fn list_incidents() -> Value {
    api_operation(
        json!({
            "tags": ["incidents"],
            "operationId": "list_incidents",
            "summary": "List incidents, newest first",
            "description": ROLE_NOTE_READ_ANY,
            "parameters": [
                parameter("ClientFilter"),
                {
                    "name": "status",
                    "in": "query",
                    "description": "Comma-separated statuses, any of them: `new,acknowledged`.",
                    "schema": {"type": "string"},
                    "example": "new,acknowledged",
                },
                {
                    "name": "priority",
                    "in": "query",
                    "description": "Comma-separated priorities, any of them, case-insensitive: `P1,P2`.",
                    "schema": {"type": "string"},
                    "example": "P1,P2",
                },
                parameter("Before"),
                parameter("Limit"),
            ],
            "responses": {
                "200": json_response("A page of incidents.", page_of("incidents", "Incident")),
            },
        }),
        &[400],
    )
}

fn get_incident() -> Value {
    api_operation(
        json!({
            "tags": ["incidents"],
            "operationId": "get_incident",
            "summary": "Get one incident",
            "description": ROLE_NOTE_READ_ANY,
            "parameters": [parameter("IncidentId")],
            "responses": {"200": json_response("The incident.", schema("Incident"))},
        }),
        &[404],
    )
}

fn get_timeline() -> Value {
    api_operation(
        json!({
            "tags": ["incidents"],
            "operationId": "get_timeline",
            "summary": "An incident's timeline",
            "description": format!("Every change to the incident, oldest first (at most 10,000 entries).\n\n{ROLE_NOTE_READ_ANY}"),
            "parameters": [parameter("IncidentId")],
            "responses": {"200": json_response("The timeline.", json!({
                "type": "object",
                "required": ["incident_id", "timeline"],
                "properties": {
                    "incident_id": {"type": "integer", "format": "int64"},
                    "timeline": array_of(schema("TimelineEntry")),
                },
            }))},
        }),
        &[404],
    )
}

fn get_incident_alerts() -> Value {
    api_operation(
        json!({
            "tags": ["incidents"],
            "operationId": "get_incident_alerts",
            "summary": "An incident's alerts",
            "description": format!("The alerts grouped in the incident, newest first (at most 1,000).\n\n{ROLE_NOTE_READ_ANY}"),
            "parameters": [parameter("IncidentId")],
            "responses": {"200": json_response("The incident's alerts.", json!({
                "type": "object",
                "required": ["incident_id", "alerts"],
                "properties": {
                    "incident_id": {"type": "integer", "format": "int64"},
                    "alerts": array_of(schema("Alert")),
                },
            }))},
        }),
        &[404],
    )
}

const ACKNOWLEDGE: &str = "Marks a `new` incident `acknowledged`: someone is on it. Any other \
status answers `409`.";
const RESOLVE: &str = "Marks a `new` or `acknowledged` incident `resolved`, and its alerts \
with it. A repeat of its problem within the client's `reopen_window` reopens it; after that \
window it is closed by Vigie. A `resolved` incident answers `409`.";
const CLOSE: &str = "Closes an incident for good (from `new`, `acknowledged` or `resolved`): a \
repeat of its problem opens a new incident.";

const ACTION_NOTE: &str = "The command is ordered with incoming signals and committed before the \
answer, which is the incident as committed. A closed incident answers `409`; an incident \
outside the token's client answers `404`.";

/// `ack`, `resolve`, `close`: no body (any body is ignored), admin and operator only.
fn incident_action(operation_id: &str, summary: &str, what: &str) -> Value {
    api_operation(
        json!({
            "tags": ["incidents"],
            "operationId": operation_id,
            "summary": summary,
            "description": format!("{what}\n\n{ACTION_NOTE} No body is needed; any body is ignored.\n\nRoles: `admin`, `operator`; `client` and `ingest` tokens get `403`."),
            "parameters": [parameter("IncidentId")],
            "responses": {"200": json_response("The incident after the action.", schema("Incident"))},
        }),
        &[403, 404, 409],
    )
}

fn comment() -> Value {
    api_operation(
        json!({
            "tags": ["incidents"],
            "operationId": "comment",
            "summary": "Comment on an incident",
            "description": format!("Adds a `comment` entry to the timeline, by the token's name. The text is trimmed and must not be empty (`400`).\n\n{ACTION_NOTE}\n\nRoles: `admin`, `operator`, `client` (on its own client's incidents); `ingest` tokens get `403`."),
            "parameters": [parameter("IncidentId")],
            "requestBody": {
                "required": true,
                "description": "Sent as `Content-Type: application/json`; a missing content type or unknown field answers `400`.",
                "content": {"application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["text"],
                        "additionalProperties": false,
                        "properties": {"text": {"type": "string", "minLength": 1, "description": "The comment."}},
                    },
                    "example": {"text": "disk replaced, watching the rebuild"},
                }},
            },
            "responses": {"200": json_response("The incident after the comment.", schema("Incident"))},
        }),
        &[400, 403, 404, 409],
    )
}

fn reassign() -> Value {
    api_operation(
        json!({
            "tags": ["incidents"],
            "operationId": "reassign",
            "summary": "Assign an incident to someone, or to no one",
            "description": format!("Sets the incident's `assignee` and adds a `reassigned` entry to the timeline. A null, absent or blank `assignee` unassigns it.\n\n{ACTION_NOTE}\n\nRoles: `admin`, `operator`; `client` and `ingest` tokens get `403`."),
            "parameters": [parameter("IncidentId")],
            "requestBody": {
                "required": true,
                "description": "Sent as `Content-Type: application/json`; a missing content type or unknown field answers `400`.",
                "content": {"application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {"assignee": nullable("string", "Free text, usually a person or team; null or blank to unassign.")},
                    },
                    "example": {"assignee": "thomas-petit"},
                }},
            },
            "responses": {"200": json_response("The incident after the reassignment.", schema("Incident"))},
        }),
        &[400, 403, 404, 409],
    )
}

fn list_alerts() -> Value {
    api_operation(
        json!({
            "tags": ["alerts"],
            "operationId": "list_alerts",
            "summary": "List alerts, newest first",
            "description": ROLE_NOTE_READ_ANY,
            "parameters": [
                parameter("ClientFilter"),
                {"name": "status", "in": "query", "description": "Only alerts in this status.", "schema": schema("AlertStatus")},
                {"name": "incident", "in": "query", "description": "Only the alerts of this incident.", "schema": {"type": "integer", "format": "int64"}},
                parameter("Before"),
                parameter("Limit"),
            ],
            "responses": {"200": json_response("A page of alerts.", page_of("alerts", "Alert"))},
        }),
        &[400],
    )
}

fn get_alert() -> Value {
    api_operation(
        json!({
            "tags": ["alerts"],
            "operationId": "get_alert",
            "summary": "Get one alert",
            "description": ROLE_NOTE_READ_ANY,
            "parameters": [parameter("AlertId")],
            "responses": {"200": json_response("The alert.", schema("Alert"))},
        }),
        &[404],
    )
}

fn list_clients() -> Value {
    api_operation(
        json!({
            "tags": ["estate"],
            "operationId": "list_clients",
            "summary": "List clients",
            "description": "Every client the token may see, by id, without their nested objects.\n\nAny role; a `client` or `ingest` token sees its own client only.",
            "responses": {"200": json_response("The clients.", json!({
                "type": "object",
                "required": ["clients"],
                "properties": {"clients": array_of(schema("ClientSummary"))},
            }))},
        }),
        &[],
    )
}

fn create_client() -> Value {
    api_operation(
        json!({
            "tags": ["estate"],
            "operationId": "create_client",
            "summary": "Create a client",
            "description": "Adds a client, with any nested objects, through the same validation as the estate files; it is stored and live at once. A problem answers `400` with one `details` entry per problem, naming the field, e.g. \"clients/acme-industrie: field `assets[0].criticality`: must be between 1 and 5\". An existing id answers `409`.\n\nRoles: `admin` only.",
            "requestBody": json_request("The client, as in an estate file.", schema("Client")),
            "responses": {"201": json_response("The client as created, with its defaults filled in.", schema("Client"))},
        }),
        &[400, 403, 409],
    )
}

fn get_client() -> Value {
    api_operation(
        json!({
            "tags": ["estate"],
            "operationId": "get_client",
            "summary": "Get a client with everything nested in it",
            "description": ROLE_NOTE_READ_ANY,
            "parameters": [parameter("ClientId")],
            "responses": {"200": json_response("The client.", schema("Client"))},
        }),
        &[404],
    )
}

fn list_client_assets() -> Value {
    api_operation(
        json!({
            "tags": ["estate"],
            "operationId": "list_client_assets",
            "summary": "A client's assets and the dependencies between them",
            "description": ROLE_NOTE_READ_ANY,
            "parameters": [parameter("ClientId")],
            "responses": {"200": json_response("The client's assets and dependencies.", json!({
                "type": "object",
                "required": ["client", "assets", "dependencies"],
                "properties": {
                    "client": {"type": "string", "description": "The client's id."},
                    "assets": array_of(schema("Asset")),
                    "dependencies": array_of(schema("Dependency")),
                },
            }))},
        }),
        &[404],
    )
}

fn create_asset() -> Value {
    api_operation(
        json!({
            "tags": ["estate"],
            "operationId": "create_asset",
            "summary": "Add an asset to a client",
            "description": "Adds an asset through the same validation as the estate files (its `site` must exist, its hostnames and addresses must not name another asset of the client…); it is stored and live at once. A problem answers `400` with one `details` entry per problem.\n\nRoles: `admin` only.",
            "parameters": [parameter("ClientId")],
            "requestBody": json_request("The asset, as in an estate file.", schema("Asset")),
            "responses": {"201": json_response("The asset as created, with its defaults filled in.", schema("Asset"))},
        }),
        &[400, 403, 404, 409],
    )
}

fn list_assets() -> Value {
    api_operation(
        json!({
            "tags": ["estate"],
            "operationId": "list_assets",
            "summary": "List assets across clients",
            "description": "Every asset the token may see, by client id then in estate order, each with its `client`.\n\nAny role; a `client` or `ingest` token sees its own client's assets only.",
            "parameters": [
                parameter("ClientFilter"),
                {"name": "tag", "in": "query", "description": "Only assets carrying this tag.", "schema": {"type": "string"}},
                {"name": "kind", "in": "query", "description": "Only assets of this kind; any other value matches nothing.", "schema": schema("AssetKind")},
            ],
            "responses": {"200": json_response("The assets.", json!({
                "type": "object",
                "required": ["assets"],
                "properties": {"assets": array_of(schema("ListedAsset"))},
            }))},
        }),
        &[400],
    )
}

const CHECK_NOTE: &str = "A check is named `client:asset:check` (`host` for the asset's host \
check). Its state is the one the supervision runtime last wrote: services are OK, WARNING, \
CRITICAL or UNKNOWN; hosts UP, DOWN or UNREACHABLE (a host behind a down parent, which never \
pages). A problem is SOFT while attempts remain (retried at `retry_interval_ms`), then HARD, \
which is when it pages.";

fn list_checks() -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": "list_checks",
            "summary": "List checks and their state",
            "description": format!("{CHECK_NOTE}\n\nIn id order, paged with `limit` and `after` (the previous page's `next_after`).\n\n{ROLE_NOTE_READ_ANY}"),
            "parameters": [
                parameter("ClientFilter"),
                {"name": "asset", "in": "query", "description": "Only this asset's checks.", "schema": {"type": "string"}},
                {"name": "state", "in": "query", "description": "Comma-separated states, e.g. `CRITICAL,DOWN`; an unknown one answers `400`.", "schema": {"type": "string"}},
                {"name": "after", "in": "query", "description": "Only checks whose id sorts after this one: the previous page's `next_after`.", "schema": {"type": "string"}},
                parameter("Limit"),
            ],
            "responses": {"200": json_response("A page of checks.", json!({
                "type": "object",
                "required": ["checks", "next_after"],
                "properties": {
                    "checks": array_of(schema("Check")),
                    "next_after": nullable("string", "The `after` of the next page, or null when this page holds fewer than `limit` checks."),
                },
            }))},
        }),
        &[400],
    )
}

fn get_check() -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": "get_check",
            "summary": "Get one check",
            "description": format!("{CHECK_NOTE}\n\n{ROLE_NOTE_READ_ANY}"),
            "parameters": [parameter("CheckId")],
            "responses": {"200": json_response("The check.", schema("Check"))},
        }),
        &[404],
    )
}

fn acknowledge_check() -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": "acknowledge_check",
            "summary": "Acknowledge a check's problem",
            "description": "Acknowledges the check's current problem, as Icinga does: its later problem notifications are kept quiet until it clears — on any state change, or (`sticky`) only on recovery — or until `expires_ms`. The author is the token's name. A check that is OK/UP, or already acknowledged, answers `409`.\n\n```sh\ncurl -sS -X POST http://127.0.0.1:8080/api/v1/checks/acme-industrie:lyo-erp-db01:postgres/acknowledge \\\n  -H \"Authorization: Bearer $VIGIE_TOKEN\" -H 'Content-Type: application/json' \\\n  -d '{\"comment\": \"disk replaced tonight\", \"sticky\": true}'\n```\n\nRoles: `admin` and `operator`.",
            "parameters": [parameter("CheckId")],
            "requestBody": json_request("The acknowledgement.", json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "comment": {"type": "string", "default": ""},
                    "sticky": {"type": "boolean", "default": false, "description": "Kept through other problem states until the check recovers."},
                    "expires_ms": nullable("integer", "When it clears by itself; must be in the future."),
                },
            })),
            "responses": {"200": json_response("The check, acknowledged.", schema("Check"))},
        }),
        &[400, 403, 404, 409],
    )
}

/// An entry of a client's `recurring_downtimes`.
fn recurring_downtime() -> Value {
    json!({
        "type": "object",
        "required": ["name", "window"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string"},
            "match": {"type": "object", "description": "As a check rule's: `tags` (all of them) and `kinds`; empty, every asset.", "properties": {"tags": {"type": "array", "items": {"type": "string"}}, "kinds": {"type": "array", "items": {"type": "string"}}}},
            "checks": {"type": "array", "items": {"type": "string"}, "description": "Check names (`host` for the host check); empty, every check."},
            "window": {"type": "object", "required": ["timezone", "from", "to"], "description": "As `business_hours`: `timezone`, `days` (default Monday to Friday), `from` and `to` (`HH:MM`, not across midnight).", "properties": {"timezone": {"type": "string"}, "days": {"type": "array", "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}}, "from": {"type": "string"}, "to": {"type": "string"}}},
            "comment": {"type": "string", "default": ""},
        },
    })
}

fn remove_check_acknowledgement() -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": "remove_check_acknowledgement",
            "summary": "Remove a check's acknowledgement",
            "description": "Clears the acknowledgement, as Icinga's `remove-acknowledgement`: the problem pages again at its next notification. A check without one answers `409`.\n\nRoles: `admin` and `operator`.",
            "parameters": [parameter("CheckId")],
            "responses": {"200": json_response("The check, without its acknowledgement.", schema("Check"))},
        }),
        &[403, 404, 409],
    )
}

fn remove_check_downtime() -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": "remove_check_downtime",
            "summary": "Remove a downtime of a check",
            "description": "Removes the downtime with this `id` (from the check's `downtimes`), as Icinga's `remove-downtime`; an active one ends at once, and a problem it kept quiet pages then. An unknown id answers `409`, one that is not a number `400`.\n\nRoles: `admin` and `operator`.",
            "parameters": [parameter("CheckId"), {"name": "downtime", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}, "description": "The downtime's `id`."}],
            "responses": {"200": json_response("The check, without that downtime.", schema("Check"))},
        }),
        &[400, 403, 404, 409],
    )
}

fn schedule_check_downtime() -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": "schedule_check_downtime",
            "summary": "Schedule a downtime on a check",
            "description": "A fixed downtime is active over `[start_ms, end_ms)`; with `duration_ms` it is flexible: it starts at the first problem within the window and lasts that long. While active, the check's notifications are kept quiet; a problem still there when it ends pages then. An empty window answers `409`.\n\nRoles: `admin` and `operator`.",
            "parameters": [parameter("CheckId")],
            "requestBody": json_request("The downtime.", json!({
                "type": "object",
                "required": ["end_ms"],
                "additionalProperties": false,
                "properties": {
                    "comment": {"type": "string", "default": ""},
                    "start_ms": nullable("integer", "When the window opens; now when absent."),
                    "end_ms": epoch_ms("When the window closes."),
                    "duration_ms": nullable("integer", "Makes it flexible: how long it lasts once triggered."),
                    "children": {"type": "boolean", "default": false, "description": "On a host check: the same downtime for the hosts behind it, recursively (Icinga's `child_options`)."},
                    "services": {"type": "boolean", "default": false, "description": "On a host check: the same downtime for its services, and with `children` for theirs (Icinga's `all_services`)."},
                },
            })),
            "responses": {"201": json_response("The check with its new downtime.", schema("Check"))},
        }),
        &[400, 403, 404, 409],
    )
}

const PASSIVE_NAMES: &str = "The host is found among the assets of the caller's client (of every client for an admin or operator token; a name several clients use answers `409`) by asset id, hostname, short name or address; the service is the check's name, the host check without one. An unknown host or check answers `404` with its name; a batch is checked whole before anything is applied.\n\nRoles: `admin`, `operator` and `ingest`.";

fn passive_icinga(operation: &str) -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": operation,
            "summary": "Submit a passive check result (Icinga 2's process-check-result)",
            "description": format!("The body Icinga 2 documents: `exit_status` (services 0–3, hosts 0 UP / 1 DOWN), `plugin_output`, optional `performance_data` (list or string), `check_source`, `execution_start`/`execution_end`, `ttl`; the object by the `host` / `service` (`host!service`) query parameters, the same body fields, or a `filter` of the form `host.name==\"h\" && service.name==\"s\"`. Also served at `/v1/actions/process-check-result`, where Icinga clients send it. Example: `curl -X POST -H 'Authorization: Bearer …' 'http://127.0.0.1:8080/v1/actions/process-check-result?service=lyo-db01!backup' -d '{{\"exit_status\": 2, \"plugin_output\": \"backup failed\"}}'`.\n\n{PASSIVE_NAMES}"),
            "parameters": [
                {"name": "host", "in": "query", "required": false, "schema": {"type": "string"}},
                {"name": "service", "in": "query", "required": false, "schema": {"type": "string"}, "description": "`host!service`"},
            ],
            "requestBody": json_request("The check result.", json!({"type": "object"})),
            "responses": {"200": json_response("As Icinga answers: one entry per object.", json!({"type": "object", "properties": {"results": {"type": "array"}}}))},
        }),
        &[400, 403, 404, 409],
    )
}

fn alertmanager_alerts() -> Value {
    api_operation(
        json!({
            "tags": ["incidents"],
            "operationId": "alertmanager_alerts",
            "summary": "Receive Prometheus alerts (Alertmanager's API v2)",
            "description": "The body Prometheus sends to an Alertmanager: a list of `{labels, annotations, startsAt, endsAt, generatorURL}`, `labels.alertname` required. The client is the token's, or the `client` label with an admin or operator token; the asset is found from an `asset`, `host` or `instance` (host:port) label among the client's. A firing alert becomes an alert (the label set is its fingerprint: re-sends count up); one whose `endsAt` has passed resolves it. Missing `startsAt` is now, missing `endsAt` now + 5 min, as Alertmanager does — but an alert that is simply no longer re-sent is not resolved by time yet. A bad alert refuses the batch, every problem listed.\n\nRoles: `admin`, `operator` and `ingest`.",
            "requestBody": json_request("The alerts.", json!({"type": "array", "items": {"type": "object", "required": ["labels"]}})),
            "responses": {"200": {"description": "Taken: the alerts are in the store."}},
        }),
        &[400, 403, 413],
    )
}

fn passive_nrdp() -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": "passive_nrdp",
            "summary": "Submit passive check results (NRDP JSON)",
            "description": format!("The `JSONDATA` object of NRDP's `submitcheck`, as the JSON body: `{{\"checkresults\": [{{\"checkresult\": {{\"type\": \"service\"}}, \"hostname\": …, \"servicename\": …, \"state\": …, \"output\": …}}]}}`. Answers as NRDP does.\n\n{PASSIVE_NAMES}"),
            "requestBody": json_request("The results.", json!({"type": "object", "required": ["checkresults"]})),
            "responses": {"200": json_response("`{\"result\": {\"status\": 0, \"message\": \"OK\", …}}`.", json!({"type": "object"}))},
        }),
        &[400, 403, 404, 409, 413],
    )
}

fn passive_commands() -> Value {
    api_operation(
        json!({
            "tags": ["checks"],
            "operationId": "passive_commands",
            "summary": "Submit passive check results (Nagios external command lines)",
            "description": format!("A text body, one command per line: `[epoch] PROCESS_SERVICE_CHECK_RESULT;host;service;return_code;output|perfdata` or `PROCESS_HOST_CHECK_RESULT;host;status_code;output` (the `[epoch] ` prefix is optional). A bad line refuses the batch with its line number.\n\n{PASSIVE_NAMES}"),
            "requestBody": {"required": true, "content": {"text/plain": {"schema": {"type": "string"}}}},
            "responses": {"200": json_response("How many results were applied.", json!({"type": "object", "properties": {"processed": {"type": "integer"}}}))},
        }),
        &[400, 403, 404, 409, 413],
    )
}

fn reload() -> Value {
    api_operation(
        json!({
            "tags": ["estate"],
            "operationId": "reload",
            "summary": "Reload the estate and the Sigma rules",
            "description": "Reads the estate directory again, merges what was added through the API, reads the Sigma rule directories (`--sigma-rules`), the Sigma filters (`--sigma-filters`) and the logsource map (`--logsource-map`) again, and compiles the rules for the new estate's clients (a rule with `expand` placeholders once per client that gives them values); `SIGHUP` does the same. All or nothing: if the estate does not load, a rule or filter directory or file cannot be read, or the logsource map cannot be read or is invalid, the running estate and rules are kept and the answer is `400` with every problem in `details` (for the estate its file, line and field; for the rules the directory or file that cannot be read; for the map each problem with its line). A rule or filter rejected on its own (a parse error, an unknown modifier, an unresolved correlation or filter reference…) does not stop the reload: it is listed in `sigma.rejected` and the others go live. What is worth knowing but no error — a rule that does not run for some clients because they give no values for its placeholders, a filter directory named after no client — is listed once in `sigma_tuning.notices`.\n\nEvents already being evaluated finish with the rules they started with; the next ones meet the new rules. Correlation windows are kept when the correlation rules and the rules they refer to are unchanged; otherwise every window starts afresh.\n\nRoles: `admin` only.",
            "responses": {"200": {"description": "The new estate and rules are live.", "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["reloaded", "version", "clients", "sigma"],
                "properties": {
                    "reloaded": {"const": true},
                    "version": {"type": "integer", "minimum": 0, "description": "The estate's version, one more at each change."},
                    "clients": {"type": "integer", "minimum": 0, "description": "How many clients the estate now has."},
                    "sigma": {
                        "type": "object",
                        "required": ["loaded", "rejected"],
                        "properties": {
                            "loaded": {"type": "integer", "minimum": 0, "description": "Sigma rules now in use, correlation rules included (also `vigie_sigma_rules_loaded` in `/metrics`)."},
                            "rejected": array_of(json!({
                                "type": "object",
                                "required": ["path", "line", "rule", "reason"],
                                "properties": {
                                    "path": {"type": "string", "description": "The rule file."},
                                    "line": {"type": ["integer", "null"], "minimum": 1, "description": "The line of the problem in the file, when known."},
                                    "rule": {"type": ["string", "null"], "description": "The rule's id, when it could be read."},
                                    "reason": {"type": "string", "description": "Why the rule was not loaded."},
                                },
                            })),
                        },
                    },
                    "sigma_tuning": {
                        "type": "object",
                        "required": ["filters", "notices", "logsource_map_entries"],
                        "properties": {
                            "filters": {"type": "integer", "minimum": 0, "description": "Sigma filter documents now in use (`--sigma-filters`, and filter documents among the rules)."},
                            "notices": array_of(json!({
                                "type": "object",
                                "required": ["path", "line", "rule", "notice"],
                                "properties": {
                                    "path": {"type": "string", "description": "The rule or filter file, or the filter directory."},
                                    "line": {"type": ["integer", "null"], "minimum": 1},
                                    "rule": {"type": ["string", "null"], "description": "The rule's or filter's id, when it has one."},
                                    "notice": {"type": "string", "description": "What to know, e.g. the clients a rule does not run for."},
                                },
                            })),
                            "logsource_map_entries": {"type": ["integer", "null"], "minimum": 0, "description": "Entries of the operator's logsource map, when one is configured."},
                        },
                    },
                },
            }, "example": {"reloaded": true, "version": 2, "clients": 2, "sigma": {"loaded": 11, "rejected": [
                    {"path": "rules/local/smb_logon.yml", "line": 6, "rule": "0f3c5e2a-7d41-4b8e-9a6f-2c1d8e5b7a90", "reason": "search `selection`, field `Image|endwith`: unknown modifier `endwith`"},
                ]}, "sigma_tuning": {"filters": 2, "logsource_map_entries": null, "notices": [
                    {"path": "rules/local/admin_logon.yml", "line": 1, "rule": "5b0e7c1a-2f43-4d7e-8a19-3c6d2e9f0b14", "notice": "rule does not run for client `bellevue-clinic` (no `%Administrators%`)"},
                ]}},
            }}}},
        }),
        &[400, 403],
    )
}

fn list_tokens() -> Value {
    api_operation(
        json!({
            "tags": ["tokens"],
            "operationId": "list_tokens",
            "summary": "List tokens",
            "description": "Every token, revoked ones included; secrets are never shown.\n\nRoles: `admin` only.",
            "responses": {"200": json_response("The tokens.", json!({
                "type": "object",
                "required": ["tokens"],
                "properties": {"tokens": array_of(schema("Token"))},
            }))},
        }),
        &[403],
    )
}

fn create_token() -> Value {
    api_operation(
        json!({
            "tags": ["tokens"],
            "operationId": "create_token",
            "summary": "Create a token",
            "description": "Issues a token. `client` is required for the `client` and `ingest` roles, refused for `admin` and `operator`, and must name a known client; `name` must not be blank. The secret is in the answer's `token` and is shown only this once.\n\nRoles: `admin` only.",
            "requestBody": {
                "required": true,
                "content": {"application/json": {
                    "schema": schema("TokenRequest"),
                    "example": {"name": "acme syslog relay", "role": "ingest", "client": "acme-industrie"},
                }},
            },
            "responses": {"201": json_response("The token, with its secret.", schema("IssuedToken"))},
        }),
        &[400, 403],
    )
}

fn revoke_token() -> Value {
    api_operation(
        json!({
            "tags": ["tokens"],
            "operationId": "revoke_token",
            "summary": "Revoke a token",
            "description": "Revokes a token at once: its next call answers `401`. An unknown or already revoked id answers `404`.\n\nRoles: `admin` only.",
            "parameters": [{
                "name": "id",
                "in": "path",
                "required": true,
                "description": "The token's id: the 12 hex digits after `vg_`.",
                "schema": {"type": "string", "pattern": "^[0-9a-f]{12}$"},
            }],
            "responses": {"200": json_response("The token is revoked.", json!({
                "type": "object",
                "required": ["id", "revoked"],
                "properties": {"id": {"type": "string"}, "revoked": {"const": true}},
            }))},
        }),
        &[403, 404],
    )
}

const STREAM: &str = "\
Server-sent events (`text/event-stream`) carrying every change to incidents, alerts and \
timelines that the token may see, as it is committed. Each message has:
- `event`: `incident`, `alert` or `timeline`;
- `id`: the change's sequence number, growing by one per change across all clients;
- `data`: the changed record as JSON: an `Incident`, an `Alert` or a `TimelineEntry`, whole.

Without a resume point the stream starts with the changes committed after the connection. To \
resume, send the last `id` received as the `Last-Event-ID` header (browsers' `EventSource` does \
so on reconnection) or as the `last_event_id` query parameter (the header wins): the changes \
after it are replayed from the store first, then the live ones follow, with neither gap nor \
duplicate. `last_event_id=0` replays every change kept. A comment line is sent every 15 \
seconds to keep the connection open.

Roles: `admin`, `operator`, `client` (its own client's changes only); `ingest` tokens get `403`.

```sh
curl -N -H \"Authorization: Bearer $VIGIE_TOKEN\" -H 'Last-Event-ID: 41' \\
  http://127.0.0.1:8080/api/v1/stream
```";

const NOTIFICATION_NOTE: &str = "\
A notification is rendered once, when Vigie decides to send it, and kept with every attempt: \
`pending` (not tried yet), `delivered`, or `failing` (the last attempt failed; it is retried \
with a capped exponential backoff, never dropped, at `next_attempt_ms`). `history` holds the \
last 20 attempts with their outcome (`250 OK`, `HTTP 500 Internal Server Error`, `timed out \
after 5s`…). Secret header values (authorisation, tokens, keys) are shown as `***`.";

fn list_notifications() -> Value {
    api_operation(
        json!({
            "tags": ["notifications"],
            "operationId": "list_notifications",
            "summary": "The delivery log",
            "description": format!("{NOTIFICATION_NOTE}\n\nNewest first.\n\n```sh\ncurl -sS 'http://127.0.0.1:8080/api/v1/notifications?status=failing' \\\n  -H \"Authorization: Bearer $VIGIE_TOKEN\"\n```\n\n{ROLE_NOTE_READ_ANY}"),
            "parameters": [
                parameter("ClientFilter"),
                {"name": "status", "in": "query", "description": "`pending`, `delivered` or `failing`; another value answers `400`.", "schema": {"type": "string", "enum": ["pending", "delivered", "failing"]}},
                {"name": "incident", "in": "query", "description": "Only this incident's notifications.", "schema": {"type": "integer", "format": "int64"}},
                {"name": "after", "in": "query", "description": "Only notifications newer than this id (to follow the log).", "schema": {"type": "integer", "format": "int64"}},
                parameter("Before"),
                parameter("Limit"),
            ],
            "responses": {"200": json_response("A page of notifications.", page_of("notifications", "Notification"))},
        }),
        &[400],
    )
}

fn get_notification() -> Value {
    api_operation(
        json!({
            "tags": ["notifications"],
            "operationId": "get_notification",
            "summary": "Get one notification and its attempts",
            "description": format!("{NOTIFICATION_NOTE}\n\n{ROLE_NOTE_READ_ANY}"),
            "parameters": [parameter("NotificationId")],
            "responses": {"200": json_response("The notification.", schema("Notification"))},
        }),
        &[404],
    )
}

fn retry_notification() -> Value {
    api_operation(
        json!({
            "tags": ["notifications"],
            "operationId": "retry_notification",
            "summary": "Send an undelivered notification now",
            "description": "Makes a pending or failing notification due now, instead of at its next backoff step, and wakes the deliverer. A delivered one answers `409`.\n\n```sh\ncurl -sS -X POST http://127.0.0.1:8080/api/v1/notifications/12/retry \\\n  -H \"Authorization: Bearer $VIGIE_TOKEN\"\n```\n\nRoles: `admin` and `operator`.",
            "parameters": [parameter("NotificationId")],
            "responses": {"200": json_response("The notification, due now.", schema("Notification"))},
        }),
        &[403, 404, 409],
    )
}

fn notification_schema() -> Value {
    let attempt = json!({
        "type": "object",
        "required": ["time_ms", "ok", "detail", "took_ms"],
        "properties": {
            "time_ms": epoch_ms("When the attempt started."),
            "ok": {"type": "boolean"},
            "detail": {"type": "string", "examples": ["250 OK", "HTTP 500 Internal Server Error", "timed out after 5s", "no SMTP server configured (notify.smtp.url)"]},
            "took_ms": {"type": "integer", "format": "int64"},
        },
    });
    let transport = json!({
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "to", "subject", "text", "html"],
                "properties": {
                    "type": {"const": "email"},
                    "to": array_of(json!({"type": "string"})),
                    "subject": {"type": "string"},
                    "text": {"type": "string"},
                    "html": {"type": "string"},
                },
            },
            {
                "type": "object",
                "required": ["type", "method", "url", "headers", "content_type", "body"],
                "properties": {
                    "type": {"const": "http"},
                    "method": {"type": "string"},
                    "url": {"type": "string"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "content_type": {"type": "string", "description": "Empty when none is sent."},
                    "body": {"type": "string"},
                },
            },
        ],
    });
    json!({
        "type": "object",
        "description": "A notification: what is sent (rendered once) and how its delivery went.",
        "required": ["id", "client", "incident_id", "crisis_id", "kind", "recipient", "destination", "transport", "status", "attempts", "next_attempt_ms", "last_error", "history", "created_ms", "delivered_ms"],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "client": {"type": "string"},
            "incident_id": {"type": ["integer", "null"], "format": "int64"},
            "crisis_id": {"type": ["integer", "null"], "format": "int64"},
            "kind": {"type": "string", "enum": ["triggered", "escalated", "reescalated", "acknowledged", "resolved", "crisis_opened", "beacon_on", "beacon_off"]},
            "recipient": {"type": "string", "examples": ["team l2-systems", "person thomas-petit", "channel ops-webhook"]},
            "destination": {"type": "string", "examples": ["email:oncall@example.com", "webhook:ops-webhook"]},
            "transport": transport,
            "status": {"type": "string", "enum": ["pending", "delivered", "failing"]},
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt_ms": nullable("integer", "When the next attempt is due; null once delivered."),
            "last_error": nullable("string", "The last failed attempt's detail; null once delivered."),
            "history": array_of(attempt),
            "created_ms": epoch_ms("When it was decided."),
            "delivered_ms": nullable("integer", "When it was delivered."),
        },
    })
}

fn stream() -> Value {
    let incident = json!({
        "id": 7, "client": "acme-industrie", "title": "ERP database down",
        "status": "acknowledged", "priority": "P1", "impact": "high", "urgency": "high",
        "group_key": "asset=lyo-erp-db01", "assignee": null, "assets": ["lyo-erp-db01"],
        "alert_count": 1, "created_ms": 1_795_774_500_187_i64,
        "updated_ms": 1_795_774_620_004_i64, "last_signal_ms": 1_795_774_500_000_i64,
        "acknowledged_ms": 1_795_774_620_004_i64, "resolved_ms": null, "closed_ms": null,
    });
    let entry = json!({
        "incident_id": 7, "client": "acme-industrie", "time_ms": 1_795_774_620_004_i64,
        "actor": "thomas", "kind": "acknowledged", "text": "acknowledged",
    });
    let example = format!(
        "id: 42\nevent: incident\ndata: {incident}\n\nid: 43\nevent: timeline\ndata: {entry}\n\n"
    );
    api_operation(
        json!({
            "tags": ["stream"],
            "operationId": "stream",
            "summary": "The live change feed",
            "description": STREAM,
            "parameters": [
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": false,
                    "description": "Resume after this change sequence number. Not a number: `400`.",
                    "schema": {"type": "integer", "format": "int64", "minimum": 0},
                },
                {
                    "name": "last_event_id",
                    "in": "query",
                    "required": false,
                    "description": "Resume after this change sequence number, for clients that cannot set headers; `Last-Event-ID` wins when both are sent.",
                    "schema": {"type": "integer", "format": "int64", "minimum": 0},
                },
            ],
            "responses": {"200": {
                "description": "The stream; it stays open until the client leaves.",
                "content": {"text/event-stream": {
                    "schema": {"type": "string", "description": "Messages of `id`, `event` and `data` lines, each ended by a blank line."},
                    "example": example,
                    "x-events": {
                        "incident": schema("Incident"),
                        "alert": schema("Alert"),
                        "timeline": schema("TimelineEntry"),
                    },
                }},
            }},
        }),
        &[400, 403],
    )
}

fn openapi() -> Value {
    json!({
        "tags": ["service"],
        "operationId": "openapi",
        "summary": "This document",
        "security": [],
        "responses": {"200": json_response("The OpenAPI 3.1 description of the API.", json!({"type": "object"}))},
    })
}

fn healthz() -> Value {
    json!({
        "tags": ["service"],
        "operationId": "healthz",
        "summary": "Liveness and store health",
        "description": "`200` when the store answers a query, `503` otherwise.",
        "security": [],
        "responses": {
            "200": {"description": "The service and its store are up.", "content": {"application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status", "store"],
                    "properties": {
                        "status": {"const": "ok"},
                        "store": {"type": "string", "enum": ["sqlite", "postgres"], "description": "The store's engine."},
                    },
                },
                "example": {"status": "ok", "store": "sqlite"},
            }}},
            "503": response("Overloaded"),
        },
    })
}

fn metrics() -> Value {
    json!({
        "tags": ["service"],
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "description": "The Prometheus text exposition format: ingest counts by source, queue depth, store commit latency, live-stream subscribers, Sigma rules loaded (`vigie_sigma_rules_loaded`, updated on reload)…",
        "security": [],
        "responses": {"200": {
            "description": "The metrics.",
            "content": {"text/plain; version=0.0.4; charset=utf-8": {
                "schema": {"type": "string"},
                "example": "# TYPE vigie_events_ingested_total counter\nvigie_events_ingested_total{source=\"http\"} 1\n",
            }},
        }},
    })
}

fn index() -> Value {
    json!({
        "tags": ["service"],
        "operationId": "index",
        "summary": "Where things are",
        "security": [],
        "responses": {"200": {"description": "The service's name, version and entry points.", "content": {"application/json": {
            "schema": {
                "type": "object",
                "required": ["name", "version", "api", "openapi"],
                "properties": {
                    "name": {"const": "vigie"},
                    "version": {"type": "string"},
                    "api": {"const": "/api/v1"},
                    "openapi": {"const": "/api/openapi.json"},
                },
            },
        }}}},
    })
}

// ---- components ---------------------------------------------------------------------------

fn bearer_scheme() -> Value {
    json!({
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "vg_<12 hex>_<32 hex>",
        "description": "An API token, `Authorization: Bearer vg_<id>_<secret>`: the id is 12 lowercase hex digits, the secret 32. Tokens are created with `vigie token create` or `POST /api/v1/tokens`; `vigie serve` prints a fresh admin token at each start. Each token has a role — `admin`, `operator`, `client` or `ingest` — and `client` and `ingest` tokens are bound to one client. A missing, malformed, unknown or revoked token answers `401` with `WWW-Authenticate: Bearer`.",
    })
}

fn parameters() -> Value {
    let integer_id = |name: &str| {
        json!({
            "name": "id",
            "in": "path",
            "required": true,
            "description": format!("The {name}'s id. A path that is not an integer answers `400` with a plain-text body from the router."),
            "schema": {"type": "integer", "format": "int64"},
        })
    };
    json!({
        "EventId": integer_id("event"),
        "IncidentId": integer_id("incident"),
        "NotificationId": integer_id("notification"),
        "AlertId": integer_id("alert"),
        "ClientId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The client's id (a slug).",
            "schema": {"type": "string"},
            "example": "acme-industrie",
        },
        "CheckId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The check's id, `client:asset:check` (`host` for the host check).",
            "schema": {"type": "string"},
            "example": "acme-industrie:lyo-erp-db01:postgres",
        },
        "ClientFilter": {
            "name": "client",
            "in": "query",
            "required": false,
            "description": "Only this client's objects. For a `client` or `ingest` token, another client's id gives an empty list rather than an error.",
            "schema": {"type": "string"},
        },
        "Before": {
            "name": "before",
            "in": "query",
            "required": false,
            "description": "Only objects with an id below this one: the previous page's `next_before`.",
            "schema": {"type": "integer", "format": "int64"},
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "Page size, 1 to 1000; outside that range answers `400`.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        },
    })
}

fn responses() -> Value {
    let error = |description: &str, code: &str, message: &str| {
        json!({
            "description": description,
            "content": {"application/json": {
                "schema": schema("Error"),
                "example": {"error": {"code": code, "message": message}},
            }},
        })
    };
    let retry_after = json!({
        "description": "Seconds to wait before trying again: always `1`.",
        "schema": {"type": "integer", "const": 1},
    });
    let mut unauthorized = error(
        "No token, or an unknown, malformed or revoked one.",
        "unauthorized",
        "unknown or revoked token",
    );
    unauthorized["headers"] = json!({"WWW-Authenticate": {"schema": {"const": "Bearer"}}});
    let mut overloaded = error(
        "Overloaded: the ingest queue is full, or (on `/healthz`) the store does not answer. Retry after `Retry-After` seconds.",
        "overloaded",
        "the ingest queue is full: retry in a second",
    );
    overloaded["headers"] = json!({"Retry-After": retry_after});
    json!({
        "BadRequest": error(
            "A malformed body or parameter; `details`, when present, lists each problem.",
            "bad_request",
            "parameter `limit`: 5000 is not between 1 and 1000",
        ),
        "Unauthorized": unauthorized,
        "Forbidden": error(
            "The token's role may not do this.",
            "forbidden",
            "a client token may not acknowledge incidents",
        ),
        "NotFound": error(
            "No such object, or one outside the token's client: the two are not told apart.",
            "not_found",
            "no incident 42",
        ),
        "Conflict": error(
            "The object's state forbids the action (a closed incident, an id that exists already…).",
            "conflict",
            "incident 42 is closed",
        ),
        "PayloadTooLarge": error(
            "The body is over the limit, compressed or once decompressed, or the batch holds more events than the ingest queue.",
            "payload_too_large",
            "the body is over 33554432 bytes: split the batch",
        ),
        "UnsupportedMediaType": error(
            "A content encoding other than gzip.",
            "unsupported_media_type",
            "content encoding \"br\" is not supported: send gzip or nothing",
        ),
        "Overloaded": overloaded,
        "Internal": error(
            "The store failed; the message says how.",
            "internal",
            "the store did not commit: disk full",
        ),
    })
}

fn schemas() -> Value {
    let mut schemas = Map::new();
    let mut add = |name: &str, body: Value| {
        schemas.insert(name.to_owned(), body);
    };
    add("Error", error_schema());
    add("Problem", problem_schema());
    add("Severity", severity_schema());
    add("EventInput", event_input_schema());
    add("IngestReceipt", ingest_receipt_schema());
    add("Event", event_schema());
    add(
        "IncidentStatus",
        json!({
            "type": "string",
            "enum": ["new", "acknowledged", "resolved", "closed"],
            "description": "`new` → `acknowledged` → `resolved` → `closed`; a resolved incident whose problem recurs within the client's `reopen_window` goes back to `new`.",
        }),
    );
    add(
        "Priority",
        json!({
            "type": "string",
            "enum": ["P1", "P2", "P3", "P4", "P5"],
            "description": "P1 is the most urgent; computed from impact and urgency.",
        }),
    );
    add(
        "Level",
        json!({"type": "string", "enum": ["high", "medium", "low"]}),
    );
    add("Incident", incident_schema());
    add(
        "AlertStatus",
        json!({"type": "string", "enum": ["firing", "resolved"]}),
    );
    add("Alert", alert_schema());
    add(
        "TimelineKind",
        json!({
            "type": "string",
            "enum": [
                "created", "alert_added", "acknowledged", "resolved", "reopened", "closed",
                "comment", "reassigned", "priority_changed",
            ],
        }),
    );
    add("TimelineEntry", timeline_entry_schema());
    add(
        "Duration",
        json!({
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h|d))+$",
            "description": "A duration: numbers with units ms, s, m, h, d, summed: `90s`, `30m`, `1h30m`. A bare number is refused. Written back with the largest exact unit (`5400s` reads back as `90m`).",
            "examples": ["30m", "2h", "1h30m"],
        }),
    );
    add("ClientSummary", client_summary_schema());
    add("Client", client_schema());
    add("IncidentGrouping", incident_grouping_schema());
    add("Site", site_schema());
    add(
        "AssetKind",
        json!({
            "type": "string",
            "enum": ["host", "network_device", "application", "business_service"],
        }),
    );
    add("Asset", asset_schema());
    add("CheckSpec", check_spec_schema());
    add("CheckRule", check_rule_schema());
    add("Check", check_schema());
    add("ListedAsset", listed_asset_schema());
    add("Dependency", dependency_schema());
    add("Team", team_schema());
    add("Contact", contact_schema());
    add(
        "Role",
        json!({
            "type": "string",
            "enum": ["admin", "operator", "client", "ingest"],
            "description": "`admin`: everything across clients. `operator`: every client's data, incident actions, ingest. `client`: one client's data, and comments on its incidents. `ingest`: sending one client's events.",
        }),
    );
    add("Notification", notification_schema());
    add("Token", token_schema());
    add("TokenRequest", token_request_schema());
    add(
        "IssuedToken",
        json!({
            "description": "A new token: its description and, this once, the token itself.",
            "allOf": [
                schema("Token"),
                {
                    "type": "object",
                    "required": ["token"],
                    "properties": {"token": {
                        "type": "string",
                        "pattern": "^vg_[0-9a-f]{12}_[0-9a-f]{32}$",
                        "description": "The bearer token. Only its hash is kept: it cannot be shown again.",
                    }},
                },
            ],
        }),
    );
    Value::Object(schemas)
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Every error answer. `code` is stable and what clients branch on:\n\n| status | code | when |\n|---|---|---|\n| 400 | `bad_request` | malformed body or parameter; `details` lists each problem |\n| 401 | `unauthorized` | no token, or an unknown, malformed or revoked one |\n| 403 | `forbidden` | the token's role may not do this |\n| 404 | `not_found` | absent, or outside the token's client |\n| 409 | `conflict` | the object's state forbids it (closed incident…) |\n| 413 | `payload_too_large` | body over the limit, compressed or not |\n| 415 | `unsupported_media_type` | a content encoding other than gzip |\n| 503 | `overloaded` | the ingest queue is full (or the store is down, on `/healthz`): retry after a second |\n| 500 | `internal` | the store failed; the message says how |",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "enum": [
                        "bad_request", "unauthorized", "forbidden", "not_found", "conflict",
                        "payload_too_large", "unsupported_media_type", "overloaded", "internal",
                    ],
                },
                "message": {"type": "string", "description": "For people: lowercase, names the field or parameter at fault."},
                "details": {
                    "type": "array",
                    "items": schema("Problem"),
                    "description": "Present only when there are several problems to list (a rejected batch or estate object).",
                },
            },
        }},
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "One problem in a rejected request. Ingest batches locate it by `index` (JSON array) or `line` (NDJSON); estate problems name the file or resource and field in `error`.",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "examples": ["field `client`: is required"]},
            "index": {"type": "integer", "minimum": 0, "description": "The event's position in a JSON array body, from 0."},
            "line": {"type": "integer", "minimum": 1, "description": "The event's line in an NDJSON body, from 1."},
        },
    })
}

fn severity_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"],
        "description": "Syslog's eight severities, least to most severe. Written in these names; read case-insensitively with the usual aliases too: `trace` (debug), `informational`/`information` (info), `warn` (warning), `err` (error), `crit`/`fatal` (critical), `emerg`/`panic` (emergency).",
    })
}

fn event_input_schema() -> Value {
    json!({
        "type": "object",
        "description": "An event as sent to `POST /api/v1/events`. Only `client` and `message` are required; a null field counts as absent. Every other top-level key is kept in the stored event's `fields` (beside the explicit `fields`, which win on a clash).",
        "required": ["client", "message"],
        "additionalProperties": true,
        "properties": {
            "client": {"type": "string", "minLength": 1, "description": "The client's id; it must exist in the estate, and be the token's own client for an `ingest` token."},
            "message": {"type": "string"},
            "time": {
                "description": "When it happened: an RFC 3339 time (`Z` or a numeric offset) or whole epoch milliseconds. Default: the time of reception.",
                "oneOf": [
                    {"type": "string", "format": "date-time"},
                    {"type": "integer", "format": "int64"},
                ],
            },
            "severity": {
                "description": "A severity name or alias, or a syslog number 0 (emergency) to 7 (debug). Default: `info`.",
                "oneOf": [
                    {"type": "string"},
                    {"type": "integer", "minimum": 0, "maximum": 7},
                ],
            },
            "asset": {"type": "string", "description": "The asset's id within the client."},
            "source": {"type": "string", "description": "Where it came from. Default: `http`."},
            "kind": {"type": "string", "description": "What sort of event it is. Default: `log`."},
            "raw": {"type": "string", "description": "The original input, if the sender keeps it."},
            "fields": {"type": "object", "description": "Anything else, kept as given."},
        },
        "example": {
            "client": "acme-industrie",
            "asset": "lyo-erp-db01",
            "time": "2026-11-27T10:15:00Z",
            "severity": "err",
            "kind": "database",
            "message": "replication lag over 300 s",
            "lag_seconds": 312,
        },
    })
}

fn ingest_receipt_schema() -> Value {
    json!({
        "type": "object",
        "required": ["accepted", "first_id"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 1, "description": "How many events were committed: the whole batch."},
            "first_id": {"type": "integer", "format": "int64", "description": "The first event's id; the batch's events have consecutive ids in body order."},
        },
    })
}

fn event_schema() -> Value {
    json!({
        "type": "object",
        "description": "A stored event. `asset`, `raw` and `fields` are omitted when absent or empty, `unparsed` when false.",
        "required": ["id", "received_ms", "time_ms", "client", "source", "kind", "severity", "message"],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "received_ms": epoch_ms("When Vigie received it."),
            "time_ms": epoch_ms("When it happened, by the sender's clock (the reception time when the sender gave none)."),
            "client": {"type": "string"},
            "asset": {"type": "string"},
            "source": {"type": "string", "description": "`http`, `syslog`, or what the sender named."},
            "kind": {"type": "string"},
            "severity": schema("Severity"),
            "message": {"type": "string"},
            "fields": {"type": "object", "description": "Everything else the sender gave."},
            "raw": {"type": "string", "description": "The input as received, when kept."},
            "unparsed": {"type": "boolean", "const": true, "description": "Present when the source could not parse the input (a syslog line in no known format): `raw` and `message` then hold the input."},
        },
        "example": {
            "id": 1042,
            "received_ms": 1_795_774_500_187_i64,
            "time_ms": 1_795_774_500_000_i64,
            "client": "acme-industrie",
            "asset": "lyo-erp-db01",
            "source": "http",
            "kind": "database",
            "severity": "error",
            "message": "replication lag over 300 s",
            "fields": {"lag_seconds": 312},
        },
    })
}

fn incident_schema() -> Value {
    json!({
        "type": "object",
        "description": "Alerts of one client grouped as one problem to handle.",
        "required": [
            "id", "client", "title", "status", "priority", "impact", "urgency", "group_key",
            "assignee", "assets", "alert_count", "created_ms", "updated_ms", "last_signal_ms",
            "acknowledged_ms", "resolved_ms", "closed_ms",
        ],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "client": {"type": "string"},
            "title": {"type": "string"},
            "status": schema("IncidentStatus"),
            "priority": schema("Priority"),
            "impact": schema("Level"),
            "urgency": schema("Level"),
            "group_key": {"type": "string", "description": "The key the incident's alerts share, e.g. `asset=lyo-erp-db01`."},
            "assignee": nullable("string", "Who handles it, or null."),
            "assets": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "description": "The assets its alerts touch, sorted: each alert's asset and, for a lateral movement, its source and target assets."},
            "alert_count": {"type": "integer", "minimum": 0},
            "created_ms": epoch_ms("When it was opened."),
            "updated_ms": epoch_ms("When it last changed."),
            "last_signal_ms": epoch_ms("The time of the latest alert signal that joined or updated it: the grouping window is measured from it."),
            "acknowledged_ms": nullable("integer", "When it was acknowledged, or null."),
            "resolved_ms": nullable("integer", "When it was resolved, or null. The reopen window is measured from it."),
            "closed_ms": nullable("integer", "When it was closed, or null."),
        },
    })
}

fn alert_schema() -> Value {
    json!({
        "type": "object",
        "description": "A rule's match, deduplicated by fingerprint: repeats of the same problem update one alert and its `count`. `labels` is omitted when empty.",
        "required": [
            "id", "client", "incident_id", "fingerprint", "rule", "title", "severity", "asset",
            "source", "kind", "status", "count", "first_seen_ms", "last_seen_ms", "last_event_id",
        ],
        "properties": {
            "id": {"type": "integer", "format": "int64"},
            "client": {"type": "string"},
            "incident_id": {"type": "integer", "format": "int64"},
            "fingerprint": {"type": "string", "description": "The stable identity of \"the same problem\" within the client."},
            "rule": {"type": "string", "description": "The rule that matched."},
            "title": {"type": "string"},
            "severity": schema("Severity"),
            "asset": nullable("string", "The asset, or null."),
            "source": {"type": "string"},
            "kind": {"type": "string"},
            "status": schema("AlertStatus"),
            "count": {"type": "integer", "minimum": 1, "description": "How many signals it has absorbed."},
            "first_seen_ms": epoch_ms("The first signal's time."),
            "last_seen_ms": epoch_ms("The latest signal's time."),
            "last_event_id": nullable("integer", "The event behind the latest signal, or null."),
            "labels": {"type": "object", "description": "Labels the rule attached. A Sigma match carries the rule's `level`, `author` and `tags`, among others; a lateral movement (a rule tagged `attack.lateral-movement`) also `lateral_movement`: `{source, target, source_asset, target_asset}`, the hosts as the event names them and the ids of the assets of the alert's client they designate (by asset id, hostname, an FQDN's first label or address, case-insensitively), or null when none of that client's assets does."},
        },
    })
}

fn timeline_entry_schema() -> Value {
    json!({
        "type": "object",
        "required": ["incident_id", "client", "time_ms", "actor", "kind", "text"],
        "properties": {
            "incident_id": {"type": "integer", "format": "int64"},
            "client": {"type": "string"},
            "time_ms": epoch_ms("When it happened."),
            "actor": {"type": "string", "description": "The token's name for people and API clients; `vigie` for the engine itself."},
            "kind": schema("TimelineKind"),
            "text": {"type": "string", "description": "What happened, or the comment."},
        },
    })
}

fn client_summary_schema() -> Value {
    json!({
        "type": "object",
        "description": "A client without its nested objects, with counts instead.",
        "required": ["id", "name", "contract", "assets", "sites"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "contract": nullable("string", "The service level, e.g. `gold`, or null."),
            "assets": {"type": "integer", "minimum": 0, "description": "How many assets it has."},
            "sites": {"type": "integer", "minimum": 0, "description": "How many sites it has."},
        },
    })
}

/// An estate id: `[a-z0-9][a-z0-9-]*`, at most 63 characters.
fn slug(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": "^[a-z0-9][a-z0-9-]*$",
        "maxLength": 63,
        "description": description,
    })
}

fn client_schema() -> Value {
    json!({
        "type": "object",
        "description": "A client the MSP supervises, with everything nested in it, as in an estate file. On creation only `id` and `name` are required and the others default; answers carry every field (optional strings as null). Ids are slugs, unique per kind within the client; references (`site`, dependency ends, team members) resolve within it; dependencies form no cycle.",
        "required": ["id", "name"],
        "additionalProperties": false,
        "properties": {
            "id": slug("Unique across clients."),
            "name": {"type": "string", "minLength": 1},
            "contract": nullable("string", "The service level, free text, e.g. `gold`."),
            "incident_grouping": schema("IncidentGrouping"),
            "reopen_window": {
                "allOf": [schema("Duration")],
                "default": "1h",
                "description": "How long after resolution a recurring problem reopens its incident instead of opening a new one.",
            },
            "sites": {"type": "array", "items": schema("Site"), "default": []},
            "assets": {"type": "array", "items": schema("Asset"), "default": []},
            "dependencies": {"type": "array", "items": schema("Dependency"), "default": []},
            "teams": {"type": "array", "items": schema("Team"), "default": []},
            "contacts": {"type": "array", "items": schema("Contact"), "default": []},
            "check_rules": {"type": "array", "items": schema("CheckRule"), "default": [], "description": "Checks applied to the assets they match: one definition for all the Linux servers of a client."},
            "recurring_downtimes": {"type": "array", "default": [], "description": "Downtimes that come back every week (Icinga's ScheduledDowntime): every check of the matched assets (or only the `checks` named) gets a fixed downtime over each occurrence of `window`.", "items": recurring_downtime()},
            "detection": {
                "type": "object",
                "additionalProperties": false,
                "description": "Detection settings. `placeholders`: values of the Sigma `expand` placeholders for this client's rules, by name without the `%` (`Administrators: [adm-jdupont]`). When not written, `Servers`, `Workstations` and `DomainControllers` are derived from the client's `host` assets (tags `workstation`, `domain-controller`). Used when the rules are compiled: at start-up and reload. Omitted when empty.",
                "properties": {
                    "placeholders": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}}, "default": {}},
                },
            },
        },
        "example": {
            "id": "acme-industrie",
            "name": "ACME Industrie",
            "contract": "gold",
            "incident_grouping": {"by": ["asset", "rule"], "window": "30m"},
            "reopen_window": "2h",
            "sites": [{"id": "lyon-plant", "name": "Lyon plant", "address": null, "timezone": "Europe/Paris"}],
            "assets": [{
                "id": "lyo-erp-db01", "name": "ERP database", "kind": "host", "criticality": 5,
                "tags": ["erp"], "addresses": ["127.0.10.21"], "hostnames": ["lyo-erp-db01"],
                "site": "lyon-plant",
            }],
            "dependencies": [],
            "teams": [{"id": "l2-systems", "name": "L2 systems", "members": ["thomas-petit"]}],
            "contacts": [{"id": "thomas-petit", "name": "Thomas Petit", "email": "thomas.petit@msp.example", "phone": null}],
        },
    })
}

fn incident_grouping_schema() -> Value {
    json!({
        "type": "object",
        "description": "Which alerts of the client share an incident: those equal on every key of `by` and no further apart than `window`.",
        "additionalProperties": false,
        "default": {"by": ["asset"], "window": "1h"},
        "properties": {
            "by": {
                "type": "array",
                "items": {"type": "string", "enum": ["asset", "rule", "source", "kind"]},
                "minItems": 1,
                "uniqueItems": true,
                "default": ["asset"],
            },
            "window": {"allOf": [schema("Duration")], "default": "1h", "description": "Longer than zero."},
        },
    })
}

fn site_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name"],
        "additionalProperties": false,
        "properties": {
            "id": slug("Unique within the client."),
            "name": {"type": "string"},
            "address": nullable("string", "A postal address."),
            "timezone": nullable("string", "An IANA zone name such as `Europe/Paris`, for people reading times."),
        },
    })
}

fn asset_schema() -> Value {
    json!({
        "type": "object",
        "description": "Something supervised. On creation only `id` and `kind` are required; answers carry every field (`name` and `site` as null when unset).",
        "required": ["id", "kind"],
        "additionalProperties": false,
        "properties": {
            "id": slug("Unique within the client."),
            "name": nullable("string", "Shown to people; the id when null."),
            "kind": schema("AssetKind"),
            "criticality": {"type": "integer", "minimum": 1, "maximum": 5, "default": 3, "description": "1 (a printer) to 5 (stops the business): drives incident priority."},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": []},
            "addresses": {
                "type": "array",
                "items": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
                "default": [],
                "description": "Addresses it sends syslog from; each names one asset within the client.",
            },
            "hostnames": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Names it sends syslog under, compared case-insensitively; each names one asset within the client.",
            },
            "site": nullable("string", "The id of one of the client's sites."),
            "host_check": {"allOf": [schema("CheckSpec")], "description": "The asset's host check (UP, DOWN, UNREACHABLE); absent, a matching `check_rules` entry may give one, else it has none."},
            "checks": {"type": "array", "items": schema("CheckSpec"), "default": [], "description": "The asset's service checks; a name also given by a rule overrides the rule's."},
        },
    })
}

fn check_spec_schema() -> Value {
    json!({
        "type": "object",
        "description": "A check as the estate writes it. `kind` picks the probe and the options it takes: `icmp` (`packets`; thresholds `rtt_ms`, `loss_percent`), `tcp` (`port`, `send`, `expect`; `connect_ms`), `http` (`url` with `$HOSTADDRESS$`/`$HOSTNAME$`, `method`, `status` such as `[200, 301-302]`, `body_regex`, `max_redirects`, `verify_tls`; `latency_ms`), `tls` (`port`, `server_name`; `days_left`, default warning `30:` critical `7:`), `dns` (`query`, `record_type`, `server`, `expect`; `latency_ms`), `plugin` (`command`, found in the Monitoring Plugins directories when named without a path, `args`, `env`), `passive` (`freshness`, `stale_state`). Thresholds are Monitoring Plugins ranges: `thresholds: {rtt_ms: {warning: \"100\", critical: \"500\"}}`. A check that does not read (unknown kind, bad range…) is left out of an estate file and reported with its file, line and field; through the API it is refused.",
        "required": ["kind"],
        "properties": {
            "name": {"type": "string", "description": "A slug, unique on the asset; required for service checks, absent (or `host`) for a host check."},
            "kind": {"type": "string", "enum": ["icmp", "tcp", "http", "tls", "dns", "plugin", "passive"]},
            "interval": {"allOf": [schema("Duration")], "default": "5m"},
            "retry_interval": {"allOf": [schema("Duration")], "default": "1m", "description": "Between attempts while the problem is soft; the interval when that is shorter."},
            "max_check_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
            "timeout": {"allOf": [schema("Duration")], "default": "10s"},
            "depends_on": {"type": "array", "items": {"type": "string"}, "description": "Checks this one depends on (Icinga's service dependencies): `check` of the same asset or `asset:check`. While one is CRITICAL or UNKNOWN (DOWN or UNREACHABLE), this check's problem does not page; it pages if it outlives them."},
            "thresholds": {"type": "object", "additionalProperties": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"warning": {"type": ["string", "number"]}, "critical": {"type": ["string", "number"]}},
            }},
        },
        "example": {"name": "postgres", "kind": "tcp", "port": 5432, "interval": "1m", "thresholds": {"connect_ms": {"warning": "200", "critical": "1000"}}},
    })
}

fn check_rule_schema() -> Value {
    json!({
        "type": "object",
        "description": "Checks given to every asset of the client that `match` selects: those carrying every tag listed and, when kinds are listed, of one of them.",
        "additionalProperties": false,
        "properties": {
            "match": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}, "default": []},
                    "kinds": {"type": "array", "items": schema("AssetKind"), "default": []},
                },
            },
            "host_check": schema("CheckSpec"),
            "checks": {"type": "array", "items": schema("CheckSpec"), "default": []},
        },
        "example": {"match": {"tags": ["linux"], "kinds": ["host"]}, "host_check": {"kind": "icmp"}, "checks": [{"name": "ssh", "kind": "tcp", "port": 22}]},
    })
}

fn check_schema() -> Value {
    let state = json!({"type": "string", "enum": ["OK", "WARNING", "CRITICAL", "UNKNOWN", "UP", "DOWN", "UNREACHABLE"]});
    json!({
        "type": "object",
        "description": "A check and its state as last written by the supervision runtime.",
        "required": ["id", "client", "asset", "check", "kind", "probe", "state", "state_type", "attempt", "max_check_attempts", "last_hard_state", "output", "long_output", "perfdata", "last_check_ms", "next_check_ms", "in_downtime", "downtimes", "acknowledgement", "flapping", "updated_ms"],
        "properties": {
            "id": {"type": "string", "description": "`client:asset:check`."},
            "client": {"type": "string"},
            "asset": {"type": "string"},
            "check": {"type": "string", "description": "The check's name; `host` for the host check."},
            "kind": {"type": "string", "enum": ["host", "service"]},
            "probe": {"type": "string", "enum": ["icmp", "tcp", "http", "tls", "dns", "plugin", "passive"]},
            "state": state,
            "state_type": {"type": "string", "enum": ["SOFT", "HARD"]},
            "attempt": {"type": "integer", "description": "1 to `max_check_attempts`."},
            "max_check_attempts": {"type": "integer"},
            "last_hard_state": state,
            "output": {"type": "string", "description": "The first line of the last result."},
            "long_output": {"type": "string"},
            "perfdata": {"type": "string"},
            "last_check_ms": nullable("integer", "When it last ran; null before its first run."),
            "next_check_ms": nullable("integer", "When it runs next."),
            "last_state_change_ms": nullable("integer", "When its state last changed."),
            "last_hard_state_change_ms": nullable("integer", "When its hard state last changed."),
            "check_interval_ms": {"type": "integer"},
            "retry_interval_ms": {"type": "integer"},
            "flapping": {"type": "boolean"},
            "flapping_percent": {"type": "number"},
            "acknowledgement": {"type": ["object", "null"], "description": "`author`, `comment`, `sticky`, `set_ms`, `expires_ms`."},
            "in_downtime": {"type": "boolean"},
            "downtimes": {"type": "array", "items": {"type": "object"}, "description": "Each with `id`, `author`, `comment`, `start_ms`, `end_ms`, `kind` (`fixed`, or `flexible` with `duration_ms`) and `started_ms` once active."},
            "updated_ms": epoch_ms("When this state was written."),
        },
    })
}

/// An asset as `GET /api/v1/assets` lists it: with its client's id. Written out rather than
/// as `allOf` with `Asset`, whose `additionalProperties: false` would refuse `client`.
fn listed_asset_schema() -> Value {
    let mut listed = asset_schema();
    listed["description"] = json!("An asset with the id of its client, as listed across clients.");
    listed["required"] = json!([
        "client",
        "id",
        "name",
        "kind",
        "criticality",
        "tags",
        "addresses",
        "hostnames",
        "site"
    ]);
    listed["properties"]["client"] =
        json!({"type": "string", "description": "The id of the asset's client."});
    listed
}

fn dependency_schema() -> Value {
    json!({
        "type": "object",
        "description": "`from` depends on `to`: when `to` fails, `from` is impacted. Both are asset ids of the client.",
        "required": ["from", "to"],
        "additionalProperties": false,
        "properties": {
            "from": {"type": "string"},
            "to": {"type": "string"},
        },
    })
}

fn team_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name"],
        "additionalProperties": false,
        "properties": {
            "id": slug("Unique within the client."),
            "name": {"type": "string"},
            "members": {"type": "array", "items": {"type": "string"}, "default": [], "description": "Contact ids of the same client."},
        },
    })
}

fn contact_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name", "email"],
        "additionalProperties": false,
        "properties": {
            "id": slug("Unique within the client."),
            "name": {"type": "string"},
            "email": {"type": "string", "format": "email"},
            "phone": nullable("string", "A phone number, free text."),
        },
    })
}

fn token_schema() -> Value {
    json!({
        "type": "object",
        "description": "An API token as listed: never its secret.",
        "required": ["id", "name", "role", "client", "created_ms", "revoked_ms"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{12}$", "description": "The 12 hex digits after `vg_` in the token."},
            "name": {"type": "string", "description": "Who or what holds it; shown as the actor in timelines."},
            "role": schema("Role"),
            "client": nullable("string", "The client a `client` or `ingest` token is bound to; null for `admin` and `operator`."),
            "created_ms": epoch_ms("When it was issued."),
            "revoked_ms": nullable("integer", "When it was revoked, or null while it is live."),
        },
    })
}

fn token_request_schema() -> Value {
    json!({
        "type": "object",
        "required": ["name", "role"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "Who or what will hold it; not blank."},
            "role": schema("Role"),
            "client": nullable("string", "Required for `client` and `ingest`, refused for `admin` and `operator`; must name a known client."),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route as `api/mod.rs` registers it: its OpenAPI path and its methods.
    #[derive(Debug)]
    struct Route {
        path: String,
        methods: Vec<&'static str>,
    }

    /// The text of one `.route(` call's arguments, from just after its `(` to its `)`.
    fn call_arguments(text: &str) -> &str {
        let mut depth = 1;
        for (at, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[..at];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced `.route(` call in api/mod.rs");
    }

    /// The methods routed in one `.route(…)` call: `get(`, `.post(`, `routing::delete(`…
    fn methods(arguments: &str) -> Vec<&'static str> {
        ["get", "post", "put", "patch", "delete"]
            .into_iter()
            .filter(|method| {
                arguments
                    .match_indices(&format!("{method}("))
                    .any(|(at, _)| {
                        !arguments[..at]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_')
                    })
            })
            .collect()
    }

    /// Every route of the router source: those in the `let v1 = Router::new()` block under
    /// `/api/v1`, those of the outer `Router::new()` after it as they are.
    fn registered_routes(source: &str) -> Vec<Route> {
        let v1_start = source
            .find("let v1 = Router::new()")
            .expect("api/mod.rs builds a `let v1 = Router::new()`");
        let v1_end = v1_start + "let v1 = Router::new()".len();
        let outer_start = v1_end
            + source[v1_end..]
                .find("Router::new()")
                .expect("api/mod.rs builds an outer `Router::new()` after v1");
        source
            .match_indices(".route(")
            .map(|(at, call)| {
                assert!(at > v1_start, "a route is registered before the v1 router");
                let arguments = call_arguments(&source[at + call.len()..]);
                let path = arguments
                    .trim_start()
                    .strip_prefix('"')
                    .and_then(|rest| rest.split_once('"'))
                    .map(|(path, _)| path)
                    .unwrap_or_else(|| panic!("a route path is not a literal: {arguments}"));
                let path = if at < outer_start {
                    format!("/api/v1{path}")
                } else {
                    path.to_owned()
                };
                Route {
                    path,
                    methods: methods(arguments),
                }
            })
            .collect()
    }

    #[test]
    fn every_registered_route_and_method_is_described() {
        let routes = registered_routes(include_str!("mod.rs"));
        assert!(routes.len() > 20, "too few routes found: {routes:?}");
        assert!(
            routes
                .iter()
                .any(|r| r.path == "/api/v1/incidents/{id}/ack")
        );
        assert!(routes.iter().any(|r| r.path == "/healthz"));
        let document = document();
        let paths = document["paths"].as_object().unwrap();
        for route in &routes {
            let item = paths
                .get(&route.path)
                .unwrap_or_else(|| panic!("{} is not described", route.path));
            assert!(!route.methods.is_empty(), "no method found for {route:?}");
            for method in &route.methods {
                assert!(
                    item.get(*method).is_some(),
                    "{method} {} is not described",
                    route.path
                );
            }
        }
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    routes
                        .iter()
                        .any(|r| &r.path == path && r.methods.contains(&method.as_str())),
                    "{method} {path} is described but not routed"
                );
            }
        }
    }

    fn collect_refs<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
        match value {
            Value::Object(object) => {
                for (key, child) in object {
                    match (key.as_str(), child) {
                        ("$ref", Value::String(target)) => refs.push(target),
                        _ => collect_refs(child, refs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves_to_a_component() {
        let document = document();
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(refs.len() > 50, "too few $refs found: {}", refs.len());
        for target in refs {
            assert!(
                target.starts_with("#/components/"),
                "{target} is not a component"
            );
            assert!(
                document.pointer(&target[1..]).is_some(),
                "{target} does not resolve"
            );
        }
    }

    /// Follows a `$ref` to what it names, or returns the value itself.
    fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(target) => document.pointer(&target[1..]).unwrap(),
            None => value,
        }
    }

    #[test]
    fn every_api_operation_needs_a_token_and_declares_its_path_parameters() {
        let document = document();
        for (path, item) in document["paths"].as_object().unwrap() {
            let placeholders: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, operation) in item.as_object().unwrap() {
                let security = &operation["security"];
                // Served where other tools' clients send them, with a token all the same.
                let compatible = ["/v1/actions/process-check-result", "/api/v2/alerts"];
                if path.starts_with("/api/v1/") || compatible.contains(&path.as_str()) {
                    assert_eq!(security, &json!([{"bearer": []}]), "{method} {path}");
                    assert!(
                        operation["responses"].get("401").is_some(),
                        "{method} {path} does not say it can answer 401"
                    );
                } else {
                    assert_eq!(security, &json!([]), "{method} {path} is public");
                }
                let parameters: Vec<&Value> = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| resolve(&document, p))
                    .collect();
                for name in &placeholders {
                    assert!(
                        parameters
                            .iter()
                            .any(|p| p["in"] == "path" && p["name"] == *name),
                        "{method} {path} does not declare its `{name}`"
                    );
                }
            }
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let document = document();
        let mut ids: Vec<&str> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|operation| operation["operationId"].as_str().unwrap())
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate operation ids");
    }
}
