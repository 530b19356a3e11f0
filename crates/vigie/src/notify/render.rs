//! E-mail rendering: a subject, a plain-text and an HTML body per language, from the template
//! files in `templates/<language>/` (embedded in the binary). The templates use a tiny `{{name}}`
//! substitution; every value put into the HTML is escaped, so a title or an alert label can
//! never inject markup. A language without templates falls back to English.

use std::collections::BTreeMap;

use vigie_core::event::format_rfc3339_ms;
use vigie_core::notify::AlertStatus;

use super::{Context, Kind};

/// One language's templates.
struct Templates {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

const EN: Templates = Templates {
    subject: include_str!("templates/en/subject.txt"),
    text: include_str!("templates/en/incident.txt"),
    html: include_str!("templates/en/incident.html"),
};

const FR: Templates = Templates {
    subject: include_str!("templates/fr/subject.txt"),
    text: include_str!("templates/fr/incident.txt"),
    html: include_str!("templates/fr/incident.html"),
};

/// The languages with templates: `en` (the fallback) and `fr`.
pub const LANGUAGES: [&str; 2] = ["en", "fr"];

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `fr`, `fr-FR`, `FR_fr` → `fr`; anything without templates → `en`.
pub fn language(requested: &str) -> &'static str {
    let primary = requested
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match primary.as_str() {
        "fr" => "fr",
        _ => "en",
    }
}

fn templates(language: &str) -> &'static Templates {
    match language {
        "fr" => &FR,
        _ => &EN,
    }
}

/// How the kind reads in a subject: "escalated", "résolu".
fn kind_word(kind: Kind, language: &str) -> &'static str {
    match (language, kind) {
        ("fr", Kind::Triggered) => "nouvel incident",
        ("fr", Kind::Escalated) => "escaladé",
        ("fr", Kind::Reescalated) => "escaladé à nouveau",
        ("fr", Kind::Acknowledged) => "pris en compte",
        ("fr", Kind::Resolved) => "résolu",
        ("fr", Kind::CrisisOpened) => "cellule de crise ouverte",
        ("fr", Kind::BeaconOn) => "balise allumée",
        ("fr", Kind::BeaconOff) => "balise éteinte",
        ("fr", Kind::Digest) => "résumé",
        (_, Kind::Triggered) => "new incident",
        (_, Kind::Escalated) => "escalated",
        (_, Kind::Reescalated) => "escalated again",
        (_, Kind::Acknowledged) => "acknowledged",
        (_, Kind::Resolved) => "resolved",
        (_, Kind::CrisisOpened) => "crisis opened",
        (_, Kind::BeaconOn) => "beacon on",
        (_, Kind::BeaconOff) => "beacon off",
        (_, Kind::Digest) => "digest",
    }
}

/// The escalation step a reason names ("step 2 of policy systems: …" → "step 2"), for the
/// subject of an escalation.
fn step(kind: Kind, reason: &str) -> String {
    if !matches!(kind, Kind::Escalated | Kind::Reescalated) {
        return String::new();
    }
    let head = reason.split(':').next().unwrap_or_default().trim();
    let head = match head.find(" of ") {
        Some(at) if head.starts_with("step ") || head.starts_with("étape ") => &head[..at],
        _ => head,
    };
    if head.is_empty() || head.chars().count() > 40 {
        String::new()
    } else {
        format!(": {head}")
    }
}

/// The first line of the body: "Incident #42 escalated: postgres CRITICAL on ERP database".
fn headline(kind: Kind, context: &Context, language: &str) -> String {
    let what = match (language, context.incident_id, context.crisis_id) {
        ("fr", Some(id), _) => format!("Incident n°{id}"),
        ("fr", None, Some(id)) => format!("Crise n°{id}"),
        ("fr", None, None) => "Vigie".to_owned(),
        (_, Some(id), _) => format!("Incident #{id}"),
        (_, None, Some(id)) => format!("Crisis #{id}"),
        (_, None, None) => "Vigie".to_owned(),
    };
    // French puts a space before the colon.
    let colon = if language == "fr" { " :" } else { ":" };
    format!(
        "{what} — {}{colon} {}",
        kind_word(kind, language),
        context.title
    )
}

fn subject_values(kind: Kind, context: &Context, language: &str) -> BTreeMap<&'static str, String> {
    let mut values = BTreeMap::new();
    values.insert(
        "priority_tag",
        context
            .priority
            .as_deref()
            .map(|p| format!(" {p}"))
            .unwrap_or_default(),
    );
    values.insert("client_name", context.client_name.clone());
    values.insert("title", context.title.clone());
    values.insert("kind", kind_word(kind, language).to_owned());
    values.insert("step", step(kind, &context.reason));
    values
}

/// The subject alone (also the headline of chat messages).
pub fn subject(kind: Kind, context: &Context, language: &str) -> String {
    let language = self::language(language);
    let values = subject_values(kind, context, language);
    one_line(&fill(
        templates(language).subject,
        &values,
        &BTreeMap::new(),
        false,
    ))
}

/// Renders the e-mail for `context` in `language` (or English).
pub fn email(kind: Kind, context: &Context, language: &str) -> Email {
    let language = self::language(language);
    let templates = templates(language);
    let subject = one_line(&fill(
        templates.subject,
        &subject_values(kind, context, language),
        &BTreeMap::new(),
        false,
    ));
    let none = if language == "fr" { "aucun" } else { "none" };
    let mut values = BTreeMap::new();
    values.insert("subject", subject.clone());
    values.insert("headline", headline(kind, context, language));
    values.insert("client", context.client.clone());
    values.insert("client_name", context.client_name.clone());
    values.insert(
        "priority",
        context.priority.clone().unwrap_or_else(|| "-".to_owned()),
    );
    values.insert("status", context.status.clone());
    values.insert(
        "assets",
        if context.assets.is_empty() {
            none.to_owned()
        } else {
            context.assets.join(", ")
        },
    );
    values.insert("reason", context.reason.clone());
    values.insert("recipient", context.recipient.clone());
    values.insert("url", context.url.clone());

    let lines: Vec<(String, String)> = context
        .alerts
        .iter()
        .map(|alert| {
            let name = alert
                .annotations
                .get("summary")
                .or_else(|| alert.labels.get("alertname"))
                .cloned()
                .unwrap_or_else(|| alert.fingerprint.clone());
            let status = match alert.status {
                AlertStatus::Firing => "FIRING",
                AlertStatus::Resolved => "RESOLVED",
            };
            (
                format!(
                    "[{status}] {name} (since {})",
                    format_rfc3339_ms(alert.starts_at_ms)
                ),
                alert.url.clone(),
            )
        })
        .collect();
    let mut text_values = values.clone();
    text_values.insert(
        "alerts",
        if lines.is_empty() {
            format!("- {none}")
        } else {
            lines
                .iter()
                .map(|(line, url)| format!("- {line} {url}"))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let text = fill(templates.text, &text_values, &BTreeMap::new(), false);
    let mut raw = BTreeMap::new();
    raw.insert(
        "alerts",
        if lines.is_empty() {
            format!("<li>{}</li>", escape_html(none))
        } else {
            lines
                .iter()
                .map(|(line, url)| {
                    format!(
                        "<li><a href=\"{}\">{}</a></li>",
                        escape_html(url),
                        escape_html(line)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let html = fill(templates.html, &values, &raw, true);
    Email {
        subject,
        text,
        html,
    }
}

/// A subject is one line: line breaks a value carried become spaces.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

/// Replaces each `{{name}}` by its value (HTML-escaped when `escape`), or by `raw`'s value as
/// it is (markup built here from escaped parts). An unknown name becomes empty; a `{{` without
/// its `}}` is kept as written.
pub fn fill(
    template: &str,
    values: &BTreeMap<&str, String>,
    raw: &BTreeMap<&str, String>,
    escape: bool,
) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        if let Some(value) = raw.get(name) {
            out.push_str(value);
        } else if let Some(value) = values.get(name) {
            if escape {
                out.push_str(&escape_html(value));
            } else {
                out.push_str(value);
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
