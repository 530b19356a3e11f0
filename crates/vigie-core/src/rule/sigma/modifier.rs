//! Value modifiers (Sigma appendix 2.1.0): a `field|mod1|mod2` chain and its values become one
//! `FieldMatcher`. Every chain the spec does not define is rejected here with the reason, so the
//! evaluator never meets an ambiguous combination.

use std::collections::HashMap;
use std::net::IpAddr;

use regex::{Regex, RegexBuilder};

use super::parse::{DetectionItem, SigmaValue};
use super::pattern::{self, Glob, Piece};

/// Upper bound for a compiled `re` program, so one rule cannot exhaust memory. Unicode `\w{1,64}`
/// (seen in SigmaHQ) needs a few MiB.
const REGEX_SIZE_LIMIT: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Windash,
    Re,
    ReInsensitive,
    ReMultiline,
    ReDotAll,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Cidr,
    Exists,
    Cased,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Time(TimePart),
    FieldRef,
    Expand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
}

impl CompareOp {
    pub(crate) fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CompareOp::Lt => left < right,
            CompareOp::Lte => left <= right,
            CompareOp::Gt => left > right,
            CompareOp::Gte => left >= right,
            CompareOp::Eq => left == right,
        }
    }
}

fn parse_modifier(name: &str) -> Option<Modifier> {
    Some(match name {
        "contains" => Modifier::Contains,
        "startswith" => Modifier::StartsWith,
        "endswith" => Modifier::EndsWith,
        "all" => Modifier::All,
        "windash" => Modifier::Windash,
        "re" => Modifier::Re,
        "i" => Modifier::ReInsensitive,
        "m" => Modifier::ReMultiline,
        "s" => Modifier::ReDotAll,
        "base64" => Modifier::Base64,
        "base64offset" => Modifier::Base64Offset,
        "utf16le" | "wide" => Modifier::Utf16Le,
        "utf16be" => Modifier::Utf16Be,
        "utf16" => Modifier::Utf16,
        "cidr" => Modifier::Cidr,
        "exists" => Modifier::Exists,
        "cased" => Modifier::Cased,
        "neq" => Modifier::Neq,
        "lt" => Modifier::Lt,
        "lte" => Modifier::Lte,
        "gt" => Modifier::Gt,
        "gte" => Modifier::Gte,
        "minute" => Modifier::Time(TimePart::Minute),
        "hour" => Modifier::Time(TimePart::Hour),
        "day" => Modifier::Time(TimePart::Day),
        "week" => Modifier::Time(TimePart::Week),
        "month" => Modifier::Time(TimePart::Month),
        "year" => Modifier::Time(TimePart::Year),
        "fieldref" => Modifier::FieldRef,
        "expand" => Modifier::Expand,
        _ => return None,
    })
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { network, prefix })
    }

    pub(crate) fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            (IpAddr::V4(n), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a| {
                Cidr {
                    network: IpAddr::V4(n),
                    prefix: self.prefix,
                }
                .contains(IpAddr::V4(a))
            }),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

/// How a field reference compares the two fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefPosition {
    Whole,
    Contains,
    StartsWith,
    EndsWith,
}

/// One compiled value of a detection item.
#[derive(Debug, Clone)]
pub(crate) enum ValueMatcher {
    /// A Sigma string (with wildcards), compared with the string form of the field.
    Pattern(Glob),
    /// A number: compared numerically with numeric fields, as text otherwise.
    Number {
        value: f64,
        text: Glob,
    },
    Bool(bool),
    /// `null`: the field is null or absent.
    Null,
    Regex(Regex),
    Compare(CompareOp, f64),
    Cidr(Cidr),
    FieldRef {
        field: String,
        position: RefPosition,
        cased: bool,
    },
    Time(TimePart, CompareOp, f64),
    /// Variants of one value (`base64offset`, `expand`): any of them.
    AnyOf(Vec<ValueMatcher>),
}

/// The slot of a field no engine has numbered.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// The test made by one detection item.
#[derive(Debug, Clone)]
pub(crate) enum FieldTest {
    Exists(bool),
    Values {
        values: Vec<ValueMatcher>,
        /// `all`: every value must match (otherwise any).
        all: bool,
        /// `neq`: the item holds when no value matches.
        negate: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct FieldMatcher {
    /// `None` searches every value of the event (keywords).
    pub field: Option<String>,
    /// The field's number in an engine's field table (`NO_SLOT` until an engine interns it).
    pub slot: u32,
    pub test: FieldTest,
}

/// What kind of comparison a chain asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Exists,
    Re,
    Cidr,
    Compare(CompareOp),
    Time(TimePart),
    FieldRef,
}

fn name_of(modifier: Modifier) -> &'static str {
    match modifier {
        Modifier::Contains => "contains",
        Modifier::StartsWith => "startswith",
        Modifier::EndsWith => "endswith",
        Modifier::All => "all",
        Modifier::Windash => "windash",
        Modifier::Re => "re",
        Modifier::ReInsensitive => "i",
        Modifier::ReMultiline => "m",
        Modifier::ReDotAll => "s",
        Modifier::Base64 => "base64",
        Modifier::Base64Offset => "base64offset",
        Modifier::Utf16Le => "utf16le",
        Modifier::Utf16Be => "utf16be",
        Modifier::Utf16 => "utf16",
        Modifier::Cidr => "cidr",
        Modifier::Exists => "exists",
        Modifier::Cased => "cased",
        Modifier::Neq => "neq",
        Modifier::Lt => "lt",
        Modifier::Lte => "lte",
        Modifier::Gt => "gt",
        Modifier::Gte => "gte",
        Modifier::Time(TimePart::Minute) => "minute",
        Modifier::Time(TimePart::Hour) => "hour",
        Modifier::Time(TimePart::Day) => "day",
        Modifier::Time(TimePart::Week) => "week",
        Modifier::Time(TimePart::Month) => "month",
        Modifier::Time(TimePart::Year) => "year",
        Modifier::FieldRef => "fieldref",
        Modifier::Expand => "expand",
    }
}

fn is_position(m: Modifier) -> bool {
    matches!(
        m,
        Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith
    )
}

fn is_encoding(m: Modifier) -> bool {
    matches!(
        m,
        Modifier::Base64
            | Modifier::Base64Offset
            | Modifier::Utf16Le
            | Modifier::Utf16Be
            | Modifier::Utf16
    )
}

/// Compiles one `field|modifiers: values` item.
pub(crate) fn compile_item(
    item: &DetectionItem,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<FieldMatcher, String> {
    let key = match &item.field {
        Some(f) if item.modifiers.is_empty() => f.clone(),
        f => format!(
            "{}|{}",
            f.as_deref().unwrap_or(""),
            item.modifiers.join("|")
        ),
    };
    compile_item_inner(item, placeholders).map_err(|reason| format!("field `{key}`: {reason}"))
}

fn compile_item_inner(
    item: &DetectionItem,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<FieldMatcher, String> {
    let mut chain = Vec::with_capacity(item.modifiers.len());
    for name in &item.modifiers {
        let modifier = parse_modifier(name).ok_or_else(|| format!("unknown modifier `{name}`"))?;
        if chain.contains(&modifier) {
            return Err(format!("modifier `{name}` repeated"));
        }
        chain.push(modifier);
    }
    let has = |m: Modifier| chain.contains(&m);
    let all = has(Modifier::All);
    let negate = has(Modifier::Neq);
    let cased = has(Modifier::Cased);
    let expand = has(Modifier::Expand);

    // Sub-modifiers of `re` must follow it.
    let re_position = chain.iter().position(|m| *m == Modifier::Re);
    for (i, m) in chain.iter().enumerate() {
        if matches!(
            m,
            Modifier::ReInsensitive | Modifier::ReMultiline | Modifier::ReDotAll
        ) && re_position.is_none_or(|r| r > i)
        {
            return Err(format!(
                "modifier `{}` is only valid after `re`",
                name_of(*m)
            ));
        }
    }

    // The kind of comparison; at most one kind-defining modifier.
    let mut kind = Kind::Text;
    let mut compare_after_time: Option<CompareOp> = None;
    let mut kind_modifiers: Vec<Modifier> = Vec::new();
    for m in &chain {
        let k = match m {
            Modifier::Exists => Some(Kind::Exists),
            Modifier::Re => Some(Kind::Re),
            Modifier::Cidr => Some(Kind::Cidr),
            Modifier::Lt => Some(Kind::Compare(CompareOp::Lt)),
            Modifier::Lte => Some(Kind::Compare(CompareOp::Lte)),
            Modifier::Gt => Some(Kind::Compare(CompareOp::Gt)),
            Modifier::Gte => Some(Kind::Compare(CompareOp::Gte)),
            Modifier::Time(p) => Some(Kind::Time(*p)),
            Modifier::FieldRef => Some(Kind::FieldRef),
            _ => None,
        };
        if let Some(k) = k {
            kind_modifiers.push(*m);
            match (kind, k) {
                (Kind::Text, _) => kind = k,
                (Kind::Time(_), Kind::Compare(op)) if compare_after_time.is_none() => {
                    compare_after_time = Some(op);
                }
                _ => {
                    return Err(format!(
                        "modifier `{}` cannot be combined with `{}`",
                        name_of(*m),
                        name_of(kind_modifiers[0])
                    ));
                }
            }
        }
    }

    // Modifiers allowed next to each kind.
    let allowed: &dyn Fn(Modifier) -> bool = match kind {
        Kind::Text => &|_| true,
        Kind::Exists => &|_| false,
        Kind::Re => &|m| {
            matches!(
                m,
                Modifier::All
                    | Modifier::Neq
                    | Modifier::Cased
                    | Modifier::Expand
                    | Modifier::ReInsensitive
                    | Modifier::ReMultiline
                    | Modifier::ReDotAll
            )
        },
        Kind::Cidr => &|m| matches!(m, Modifier::Neq | Modifier::Expand),
        Kind::Compare(_) => &|m| matches!(m, Modifier::All),
        Kind::Time(_) => &|m| matches!(m, Modifier::All | Modifier::Neq),
        Kind::FieldRef => {
            &|m| matches!(m, Modifier::All | Modifier::Neq | Modifier::Cased) || is_position(m)
        }
    };
    for m in &chain {
        if !kind_modifiers.contains(m) && !allowed(*m) {
            return Err(format!(
                "modifier `{}` cannot be combined with `{}`",
                name_of(*m),
                name_of(kind_modifiers[0])
            ));
        }
    }
    if kind == Kind::Text && negate && all {
        return Err("modifier `neq` cannot be combined with `all`".to_owned());
    }
    let positions: Vec<&Modifier> = chain.iter().filter(|m| is_position(**m)).collect();
    if positions.len() > 1 {
        return Err(format!(
            "modifiers `{}` and `{}` cannot be combined",
            name_of(*positions[0]),
            name_of(*positions[1])
        ));
    }
    if has(Modifier::Base64) && has(Modifier::Base64Offset) {
        return Err("modifiers `base64` and `base64offset` cannot be combined".to_owned());
    }
    let utf16_count = chain
        .iter()
        .filter(|m| matches!(m, Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16))
        .count();
    if utf16_count > 1 {
        return Err("only one of `utf16le`/`wide`, `utf16be`, `utf16` may be used".to_owned());
    }
    // Wildcards cannot be encoded: encodings come before `contains`/`startswith`/`endswith`.
    if let Some(p) = chain.iter().position(|m| is_position(*m))
        && let Some(e) = chain[p..].iter().find(|m| is_encoding(**m))
    {
        return Err(format!(
            "modifier `{}` after `{}`: wildcards cannot be encoded",
            name_of(*e),
            name_of(chain[p])
        ));
    }
    if let (Some(b), Some(u)) = (
        chain
            .iter()
            .position(|m| matches!(m, Modifier::Base64 | Modifier::Base64Offset)),
        chain
            .iter()
            .position(|m| matches!(m, Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16)),
    ) && u > b
    {
        return Err("utf16 encoding after base64 is not supported".to_owned());
    }
    if all && item.values.len() < 2 {
        return Err("modifier `all` needs a list of at least two values".to_owned());
    }

    if kind == Kind::Exists {
        return match item.values.as_slice() {
            [SigmaValue::Bool(b)] => Ok(FieldMatcher {
                field: item.field.clone(),
                slot: NO_SLOT,
                test: FieldTest::Exists(*b),
            }),
            _ => Err("modifier `exists` needs a single boolean value".to_owned()),
        };
    }
    if item.field.is_none() && !matches!(kind, Kind::Text | Kind::Re) {
        return Err(format!(
            "modifier `{}` needs a field name",
            name_of(kind_modifiers[0])
        ));
    }

    // Keywords are searched inside the values of the event, not matched against whole values.
    if item.field.is_none() && kind == Kind::Text && !chain.iter().any(|m| is_position(*m)) {
        chain.push(Modifier::Contains);
    }
    let mut values = Vec::with_capacity(item.values.len());
    for value in &item.values {
        let texts: Vec<String> = match value {
            SigmaValue::String(s) if expand => expand_placeholders(s, placeholders)?,
            SigmaValue::String(s) => vec![s.clone()],
            SigmaValue::Int(i) => vec![i.to_string()],
            SigmaValue::Float(f) => vec![f.to_string()],
            SigmaValue::Bool(b) => vec![b.to_string()],
            SigmaValue::Null => {
                if chain
                    .iter()
                    .any(|m| !matches!(m, Modifier::All | Modifier::Neq))
                {
                    return Err("a `null` value cannot take modifiers".to_owned());
                }
                values.push(ValueMatcher::Null);
                continue;
            }
        };
        let mut variants = Vec::with_capacity(texts.len());
        for text in texts {
            variants.push(compile_value(
                value,
                &text,
                kind,
                compare_after_time,
                &chain,
                cased,
            )?);
        }
        values.push(if variants.len() == 1 {
            variants.remove(0)
        } else {
            ValueMatcher::AnyOf(variants)
        });
    }
    Ok(FieldMatcher {
        field: item.field.clone(),
        slot: NO_SLOT,
        test: FieldTest::Values {
            values,
            all,
            negate,
        },
    })
}

fn numeric(value: &SigmaValue, text: &str) -> Option<f64> {
    match value {
        SigmaValue::Int(i) => Some(*i as f64),
        SigmaValue::Float(f) => Some(*f),
        _ => text.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

fn compile_value(
    value: &SigmaValue,
    text: &str,
    kind: Kind,
    compare_after_time: Option<CompareOp>,
    chain: &[Modifier],
    cased: bool,
) -> Result<ValueMatcher, String> {
    match kind {
        Kind::Exists => Err("invariant: exists handled earlier".to_owned()),
        Kind::Re => {
            let has = |m| chain.contains(&m);
            // `i` as an inline flag rather than a builder option, so that the pattern text
            // says it (the rule index reads literals from it).
            let pattern = if has(Modifier::ReInsensitive) {
                format!("(?i){text}")
            } else {
                text.to_owned()
            };
            RegexBuilder::new(&pattern)
                .multi_line(has(Modifier::ReMultiline))
                .dot_matches_new_line(has(Modifier::ReDotAll))
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map(ValueMatcher::Regex)
                .map_err(|e| {
                    let detail = e.to_string();
                    let detail = detail.lines().last().unwrap_or("").trim().to_owned();
                    format!("bad regex `{text}`: {detail}")
                })
        }
        Kind::Cidr => Cidr::parse(text)
            .map(ValueMatcher::Cidr)
            .ok_or_else(|| format!("bad cidr network `{text}`")),
        Kind::Compare(op) => numeric(value, text)
            .map(|n| ValueMatcher::Compare(op, n))
            .ok_or_else(|| format!("comparison needs a numeric value, found `{text}`")),
        Kind::Time(part) => numeric(value, text)
            .map(|n| ValueMatcher::Time(part, compare_after_time.unwrap_or(CompareOp::Eq), n))
            .ok_or_else(|| format!("time part needs a numeric value, found `{text}`")),
        Kind::FieldRef => {
            let position = match chain.iter().find(|m| is_position(**m)) {
                Some(Modifier::Contains) => RefPosition::Contains,
                Some(Modifier::StartsWith) => RefPosition::StartsWith,
                Some(Modifier::EndsWith) => RefPosition::EndsWith,
                _ => RefPosition::Whole,
            };
            Ok(ValueMatcher::FieldRef {
                field: text.to_owned(),
                position,
                cased,
            })
        }
        Kind::Text => compile_text(value, text, chain, cased),
    }
}

/// A plain or transformed string value.
fn compile_text(
    value: &SigmaValue,
    text: &str,
    chain: &[Modifier],
    cased: bool,
) -> Result<ValueMatcher, String> {
    let transforms = chain
        .iter()
        .any(|m| is_position(*m) || is_encoding(*m) || *m == Modifier::Windash);
    match value {
        SigmaValue::Int(_) | SigmaValue::Float(_) if !transforms => {
            let n = numeric(value, text).unwrap_or(f64::NAN);
            return Ok(ValueMatcher::Number {
                value: n,
                text: Glob::new(&pattern::literal_pieces(text), cased),
            });
        }
        SigmaValue::Bool(b) if !transforms => return Ok(ValueMatcher::Bool(*b)),
        _ => {}
    }
    let pieces = match value {
        SigmaValue::String(_) => pattern::parse_pattern(text),
        _ => pattern::literal_pieces(text),
    };
    // A value in the pipeline: text with wildcards, or bytes after an encoding.
    enum Stage {
        Text(Vec<Piece>),
        Bytes(Vec<u8>),
    }
    let as_bytes = |stage: &Stage, modifier: Modifier| -> Result<Vec<u8>, String> {
        match stage {
            Stage::Bytes(b) => Ok(b.clone()),
            Stage::Text(p) => pattern::literal_text(p)
                .map(String::into_bytes)
                .ok_or_else(|| {
                    format!(
                        "modifier `{}` cannot encode wildcards (escape `*` and `?` with `\\`)",
                        name_of(modifier)
                    )
                }),
        }
    };
    let as_text = |bytes: &[u8]| -> Vec<Piece> {
        match std::str::from_utf8(bytes) {
            Ok(s) => pattern::literal_pieces(s),
            Err(_) => bytes
                .iter()
                .map(|b| Piece::Literal(char::from(*b)))
                .collect(),
        }
    };
    let mut stages = vec![Stage::Text(pieces)];
    for modifier in chain {
        let mut next = Vec::with_capacity(stages.len());
        for stage in &stages {
            match modifier {
                Modifier::Windash => {
                    let mut pieces = match stage {
                        Stage::Text(p) => p.clone(),
                        Stage::Bytes(b) => as_text(b),
                    };
                    pattern::apply_windash(&mut pieces);
                    next.push(Stage::Text(pieces));
                }
                Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16 => {
                    let bytes = as_bytes(stage, *modifier)?;
                    let text = String::from_utf8_lossy(&bytes);
                    let mut out = Vec::with_capacity(bytes.len() * 2 + 2);
                    if *modifier == Modifier::Utf16 {
                        out.extend_from_slice(&[0xFF, 0xFE]);
                    }
                    for unit in text.encode_utf16() {
                        if *modifier == Modifier::Utf16Be {
                            out.extend_from_slice(&unit.to_be_bytes());
                        } else {
                            out.extend_from_slice(&unit.to_le_bytes());
                        }
                    }
                    next.push(Stage::Bytes(out));
                }
                Modifier::Base64 => {
                    let bytes = as_bytes(stage, *modifier)?;
                    next.push(Stage::Text(pattern::literal_pieces(&base64_encode(&bytes))));
                }
                Modifier::Base64Offset => {
                    let bytes = as_bytes(stage, *modifier)?;
                    for variant in base64_offsets(&bytes) {
                        next.push(Stage::Text(pattern::literal_pieces(&variant)));
                    }
                }
                Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith => {
                    let mut pieces = match stage {
                        Stage::Text(p) => p.clone(),
                        Stage::Bytes(b) => as_text(b),
                    };
                    if *modifier != Modifier::StartsWith && pieces.first() != Some(&Piece::Star) {
                        pieces.insert(0, Piece::Star);
                    }
                    if *modifier != Modifier::EndsWith && pieces.last() != Some(&Piece::Star) {
                        pieces.push(Piece::Star);
                    }
                    next.push(Stage::Text(pieces));
                }
                _ => {
                    next.push(match stage {
                        Stage::Text(p) => Stage::Text(p.clone()),
                        Stage::Bytes(b) => Stage::Bytes(b.clone()),
                    });
                }
            }
        }
        stages = next;
    }
    let mut globs: Vec<ValueMatcher> = stages
        .iter()
        .map(|stage| {
            let pieces = match stage {
                Stage::Text(p) => p.clone(),
                Stage::Bytes(b) => as_text(b),
            };
            ValueMatcher::Pattern(Glob::new(&pieces, cased))
        })
        .collect();
    Ok(if globs.len() == 1 {
        globs.remove(0)
    } else {
        ValueMatcher::AnyOf(globs)
    })
}

/// The `%name%` placeholders of one value, in order, each with the text before it; and the
/// text after the last one.
fn placeholder_spans(text: &str) -> (Vec<(&str, &str)>, &str) {
    let mut spans = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('%') else {
            break;
        };
        spans.push((&rest[..start], &after[..end]));
        rest = &after[end + 1..];
    }
    (spans, rest)
}

/// The placeholder names an item's values use, when the item has the `expand` modifier (an
/// item without it has none: its `%` are literal). Names come once each, in order of use.
pub(crate) fn placeholder_names(item: &DetectionItem) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if !item.modifiers.iter().any(|m| m == "expand") {
        return names;
    }
    for value in &item.values {
        if let SigmaValue::String(text) = value {
            for (_, name) in placeholder_spans(text).0 {
                if !names.iter().any(|known| known == name) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

/// Replaces every `%name%` with each of its values; the result has one string per combination.
fn expand_placeholders(
    text: &str,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<Vec<String>, String> {
    let mut results = vec![String::new()];
    let (spans, rest) = placeholder_spans(text);
    for (prefix, name) in spans {
        let values = placeholders
            .get(name)
            .ok_or_else(|| format!("unresolved placeholder `%{name}%`"))?;
        if values.is_empty() {
            return Err(format!("placeholder `%{name}%` has no values"));
        }
        results = results
            .iter()
            .flat_map(|r| values.iter().map(move |v| format!("{r}{prefix}{v}")))
            .collect();
    }
    for r in &mut results {
        r.push_str(rest);
    }
    Ok(results)
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(
                    BASE64_ALPHABET[((n >> (18 - 6 * i)) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The three encodings of `bytes` at offsets 0, 1 and 2 within a base64 stream, trimmed to the
/// characters that do not depend on the surrounding bytes (as pySigma does).
pub(crate) fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END_TRIM: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|shift| {
            let mut shifted = vec![b' '; shift];
            shifted.extend_from_slice(bytes);
            let encoded = base64_encode(&shifted);
            let end = encoded
                .len()
                .saturating_sub(END_TRIM[(bytes.len() + shift) % 3]);
            encoded
                .get(START[shift]..end.max(START[shift]))
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}
