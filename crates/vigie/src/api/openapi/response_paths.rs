//! The OpenAPI description of qualification, escalation and crisis (`api::response`).

use serde_json::{Value, json};

use super::{api_operation, json_request, json_response};

fn path_parameter(name: &str, kind: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": kind}})
}

fn client_query() -> Value {
    json!({"name": "client", "in": "query", "required": false,
        "description": "Only this client (a client-bound token sees its own client only).",
        "schema": {"type": "string"}})
}

fn object(description: &str) -> Value {
    json!({"type": "object", "description": description})
}

fn read(operation_id: &str, tag: &str, summary: &str, description: &str, key: &str) -> Value {
    api_operation(
        json!({
            "tags": [tag],
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "parameters": [client_query()],
            "responses": {"200": json_response(summary, json!({
                "type": "object",
                "required": [key],
                "properties": {key: {"type": "array", "items": {"type": "object"}}},
            }))},
        }),
        &[400],
    )
}

const READ_NOTE: &str = "Any role; a `client` or `ingest` token sees its own client only. Defined in the estate (docs/response.md).";

pub(super) fn paths() -> Vec<(&'static str, Value)> {
    let incident = path_parameter("id", "integer", "The incident's id.");
    vec![
        (
            "/api/v1/business-services",
            json!({"get": read("list_business_services", "response", "List business services with their health",
                &format!("Every business service (assets of kind application or business_service) with its calculation method, indicators, current status (OK, WARNING, UNKNOWN, CRITICAL), health (0–100), the indicators that make it not OK, and since when.\n\n{READ_NOTE}"),
                "business_services")}),
        ),
        (
            "/api/v1/business-services/{client}/{id}",
            json!({"get": api_operation(json!({
                "tags": ["response"],
                "operationId": "get_business_service",
                "summary": "One business service with its history",
                "description": format!("The service, its current health, and its last 200 status changes, newest first.\n\n{READ_NOTE}"),
                "parameters": [path_parameter("client", "string", "The client's id."), path_parameter("id", "string", "The service's asset id.")],
                "responses": {"200": json_response("The service.", object("A business service with `history`."))},
            }), &[404])}),
        ),
        (
            "/api/v1/teams",
            json!({"get": read("list_teams", "response", "List teams", READ_NOTE, "teams")}),
        ),
        (
            "/api/v1/schedules",
            json!({"get": read("list_schedules", "response", "List on-call schedules", &format!("Each schedule with `on_call_now`, the contact on call at the time of the request.\n\n{READ_NOTE}"), "schedules")}),
        ),
        (
            "/api/v1/escalation-policies",
            json!({"get": read("list_escalation_policies", "response", "List escalation policies and routing rules", READ_NOTE, "escalation_policies")}),
        ),
        (
            "/api/v1/crisis-triggers",
            json!({"get": read("list_crisis_triggers", "response", "List crisis triggers", READ_NOTE, "crisis_triggers")}),
        ),
        (
            "/api/v1/inhibition-rules",
            json!({"get": read("list_inhibition_rules", "response", "List inhibition rules", &format!("Each client's `inhibit_rules`, as Alertmanager's: while an alert matching `source_matchers` fires, the pages of the alerts matching `target_matchers` that have the same values of the `equal` labels are held back (resolved messages are still sent). Written in the estate.\n\n{READ_NOTE}"), "inhibition_rules")}),
        ),
        (
            "/api/v1/crises",
            json!({"get": api_operation(json!({
                "tags": ["response"],
                "operationId": "list_crises",
                "summary": "List crises",
                "description": "Crises opened by the crisis triggers, newest first (at most 500). `status`: `open` or `closed`.\n\nAny role, scoped to the token's client.",
                "parameters": [client_query(), {"name": "status", "in": "query", "required": false, "schema": {"type": "string", "enum": ["open", "closed"]}}],
                "responses": {"200": json_response("The crises.", json!({"type": "object", "required": ["crises"], "properties": {"crises": {"type": "array", "items": {"type": "object"}}}}))},
            }), &[400])}),
        ),
        (
            "/api/v1/crises/{id}",
            json!({"get": api_operation(json!({
                "tags": ["response"],
                "operationId": "get_crisis",
                "summary": "Get one crisis",
                "description": "The crisis record: client, trigger, reason, incidents, status, times.",
                "parameters": [path_parameter("id", "integer", "The crisis id.")],
                "responses": {"200": json_response("The crisis.", object("A crisis."))},
            }), &[404])}),
        ),
        (
            "/api/v1/crises/{id}/close",
            json!({"post": api_operation(json!({
                "tags": ["response"],
                "operationId": "close_crisis",
                "summary": "Close a crisis",
                "description": "Closes an open crisis; the client's beacons are switched off once none of its crises is open. Roles `admin`, `operator`.",
                "parameters": [path_parameter("id", "integer", "The crisis id.")],
                "responses": {"200": json_response("The closed crisis.", object("A crisis."))},
            }), &[403, 404])}),
        ),
        (
            "/api/v1/silences",
            json!({
                "get": read("list_silences", "response", "List silences", "Silences created through the API and those of the estate (`source`), each with `state` `pending`, `active` or `expired`. Any role, scoped.", "silences"),
                "post": api_operation(json!({
                    "tags": ["response"],
                    "operationId": "create_silence",
                    "summary": "Create a silence",
                    "description": "Mutes the notifications of the firing alerts all `matchers` match, between `starts_at` (default now) and `ends_at` (or `starts_at` + `duration`). Matchers are Alertmanager's: text (`asset=\"lyo-mes01\"`, `rule=~\"check/.*\"`, `!=`, `!~`) or objects `{name, value, isRegex, isEqual}`; `startsAt`, `endsAt` and `createdBy` are accepted as Alertmanager spells them. A silence that matches every alert is refused. Resolutions are always notified. Roles `admin`, `operator`; `client` is required with a token not bound to a client.",
                    "requestBody": json_request("The silence.", json!({
                        "type": "object",
                        "required": ["matchers", "comment"],
                        "properties": {
                            "client": {"type": "string"},
                            "matchers": {"type": "array", "items": {}},
                            "starts_at": {"type": "string", "format": "date-time"},
                            "ends_at": {"type": "string", "format": "date-time"},
                            "duration": {"type": "string", "examples": ["2h"]},
                            "created_by": {"type": "string"},
                            "comment": {"type": "string"},
                        },
                    })),
                    "responses": {"200": json_response("The silence.", object("A silence with its `state`."))},
                }), &[400, 403, 404]),
            }),
        ),
        (
            "/api/v1/silences/{id}",
            json!({"delete": api_operation(json!({
                "tags": ["response"],
                "operationId": "expire_silence",
                "summary": "Expire a silence",
                "description": "Ends the silence now (it stays listed as expired). Roles `admin`, `operator`.",
                "parameters": [path_parameter("id", "string", "The silence id.")],
                "responses": {"200": json_response("The expired silence.", object("A silence."))},
            }), &[403, 404])}),
        ),
        (
            "/api/v1/incidents/{id}/escalation",
            json!({"get": api_operation(json!({
                "tags": ["incidents"],
                "operationId": "get_escalation",
                "summary": "An incident's escalation",
                "description": "The team and policy the routing gave the incident, the step and round reached, when the next step is due, the level reached and who was notified. `escalation` is null when no routing rule matched.",
                "parameters": [incident.clone()],
                "responses": {"200": json_response("The escalation.", object("`{incident, escalation}`"))},
            }), &[404])}),
        ),
        (
            "/api/v1/incidents/{id}/merge",
            json!({"post": api_operation(json!({
                "tags": ["incidents"],
                "operationId": "merge_incidents",
                "summary": "Merge another incident into this one",
                "description": "Moves every alert of incident `from` into this one and closes `from` (timeline `merged`). Both must be new or acknowledged incidents of one client. Roles `admin`, `operator`.",
                "parameters": [incident.clone()],
                "requestBody": json_request("The incident merged in.", json!({"type": "object", "required": ["from"], "properties": {"from": {"type": "integer"}}})),
                "responses": {"200": json_response("This incident, as committed.", object("An incident."))},
            }), &[400, 403, 404, 409])}),
        ),
        (
            "/api/v1/incidents/{id}/split",
            json!({"post": api_operation(json!({
                "tags": ["incidents"],
                "operationId": "split_incident",
                "summary": "Split alerts out into a new incident",
                "description": "Moves the given alerts (some, not all, of this incident's) into a new incident. Roles `admin`, `operator`.",
                "parameters": [incident],
                "requestBody": json_request("The alerts that move.", json!({"type": "object", "required": ["alerts"], "properties": {"alerts": {"type": "array", "items": {"type": "integer"}}}})),
                "responses": {"200": json_response("This incident, as committed.", object("An incident."))},
            }), &[400, 403, 404, 409])}),
        ),
    ]
}
