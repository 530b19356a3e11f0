//! The OpenAPI description of a check's performance data as time series (`api::perfdata`).

use serde_json::{Value, json};

use super::{api_operation, json_response, parameter};

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

const DESCRIPTION: &str = "\
A check's performance data (Nagios perfdata `label=value[UOM];warn;crit;min;max` and the native \
probes' metrics) as time series: one series per label and unit. Raw points are \
`[time_ms, value]`; roll-ups are `{t, min, max, avg, last, count}` per bucket starting at `t`. \
Kept by default 2 days raw, 30 days at 5 minutes, 400 days hourly (`perfdata.retention`). \
At `step=auto` the finest resolution still kept over the whole range is read, buckets merged \
so that a series has at most 2,000 points (`resolution` then says the merged step, e.g. \
`25m`); a fixed step returns at most 10,000 points per series, `truncated` set when there \
were more. Buckets not yet rolled up are computed from the raw points, so every resolution \
reaches the present.\n\nAny role; a `client` or `ingest` token sees its own client's checks \
only: another client's check answers 404, as an absent one. A bad `from`, `to` or `step` \
answers 400 naming it.";

pub(super) fn paths() -> Vec<(&'static str, Value)> {
    let time = json!({"type": "string", "examples": ["2026-01-01T10:00:00Z", "1767261600000"]});
    let point = json!({"oneOf": [
        {"type": "array", "description": "A raw point: [time_ms, value].", "prefixItems": [{"type": "integer"}, {"type": "number"}]},
        {"type": "object", "description": "A roll-up bucket.", "required": ["t", "min", "max", "avg", "last", "count"],
            "properties": {"t": {"type": "integer", "format": "int64"}, "min": {"type": "number"}, "max": {"type": "number"},
            "avg": {"type": "number"}, "last": {"type": "number"}, "count": {"type": "integer"}}},
    ]});
    let answer = json!({
        "type": "object",
        "required": ["check", "from", "to", "series"],
        "properties": {
            "check": {"type": "string"},
            "from": {"type": "integer", "format": "int64"},
            "to": {"type": "integer", "format": "int64"},
            "series": {"type": "array", "items": {
                "type": "object",
                "required": ["label", "unit", "resolution", "step_ms", "truncated", "points"],
                "properties": {
                    "label": {"type": "string"},
                    "unit": {"type": "string", "description": "As the plugin wrote it; empty when none."},
                    "resolution": {"type": "string", "description": "`raw`, `5m`, `1h`, or a merged step at `auto` (`25m`, `5h`)."},
                    "step_ms": {"type": ["integer", "null"], "description": "The bucket length; null for raw points."},
                    "truncated": {"type": "boolean"},
                    "points": {"type": "array", "items": point},
                },
            }},
        },
    });
    vec![(
        "/api/v1/checks/{id}/perfdata",
        json!({"get": api_operation(json!({
            "tags": ["checks"],
            "operationId": "get_check_perfdata",
            "summary": "A check's performance data as time series",
            "description": DESCRIPTION,
            "parameters": [
                parameter("CheckId"),
                query("label", "One label; every label of the check when absent.", json!({"type": "string"})),
                query("from", "RFC 3339 or epoch milliseconds; default `to` minus one day.", time.clone()),
                query("to", "RFC 3339 or epoch milliseconds, excluded; default now.", time),
                query("step", "`raw`, `5m`, `1h` or `auto` (default).", json!({"type": "string", "enum": ["raw", "5m", "1h", "auto"]})),
            ],
            "responses": {"200": json_response("The check's series.", answer)},
        }), &[400, 404])}),
    )]
}
