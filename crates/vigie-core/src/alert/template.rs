//! Title templates: `{message}`, `{asset}`, `{source}`, `{kind}` and `{field.NAME}` stand for
//! the event's values, `{{` and `}}` for braces. Rule loading checks a template once with
//! `check`; `render` then never fails (a template it cannot read comes out as written).

use std::fmt::Write;

use crate::event::Event;

use super::{Found, lookup, lookup_field};

enum Piece<'a> {
    Literal(&'a str),
    Message,
    Asset,
    Source,
    Kind,
    Field(&'a str),
}

/// Walks the template, handing each piece to `emit`; stops at the first mistake.
fn walk<'a>(template: &'a str, mut emit: impl FnMut(Piece<'a>)) -> Result<(), String> {
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        if at > 0 {
            emit(Piece::Literal(&rest[..at]));
        }
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            emit(Piece::Literal("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            emit(Piece::Literal("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err("`}` without `{` (write `}}` for a brace)".to_owned());
        } else {
            let Some(close) = tail.find('}') else {
                return Err("`{` is never closed (write `{{` for a brace)".to_owned());
            };
            let name = &tail[1..close];
            emit(match name {
                "message" => Piece::Message,
                "asset" => Piece::Asset,
                "source" => Piece::Source,
                "kind" => Piece::Kind,
                _ => match name.strip_prefix("field.") {
                    Some(field) if !field.is_empty() => Piece::Field(field),
                    _ => {
                        return Err(format!(
                            "unknown placeholder `{{{name}}}`: use {{message}}, {{asset}}, \
                             {{source}}, {{kind}} or {{field.NAME}}"
                        ));
                    }
                },
            });
            rest = &tail[close + 1..];
        }
    }
    if !rest.is_empty() {
        emit(Piece::Literal(rest));
    }
    Ok(())
}

pub(super) fn check(template: &str) -> Result<(), String> {
    walk(template, |_| {})
}

/// The title for one event; a value the event lacks reads `-`.
pub(super) fn render(template: &str, event: &Event) -> String {
    let mut title = String::with_capacity(template.len() + event.message.len());
    let walked = walk(template, |piece| {
        let found = match piece {
            Piece::Literal(text) => Some(Found::Text(text)),
            Piece::Message => lookup(event, "message"),
            Piece::Asset => lookup(event, "asset"),
            Piece::Source => lookup(event, "source"),
            Piece::Kind => lookup(event, "kind"),
            Piece::Field(name) => lookup_field(&event.fields, name),
        };
        match found {
            // Writing into a `String` cannot fail.
            Some(found) => {
                let _ = write!(title, "{found}");
            }
            None => title.push('-'),
        }
    });
    match walked {
        Ok(()) => title,
        Err(_) => template.to_owned(),
    }
}
