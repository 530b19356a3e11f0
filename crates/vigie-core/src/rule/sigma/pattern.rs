//! Sigma string patterns: escapes, `*`/`?` wildcards and the `windash` dash class, compiled into
//! a matcher anchored to the whole value. Case folding is decided once at compile time: the
//! pattern is lowered here and the caller passes a lowered value.

/// One character position of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(char),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
    /// A dash produced by `windash`: any of `-`, `/`, `–`, `—`, `―`.
    Dash,
}

pub(crate) const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Reads a Sigma string: `\*`, `\?` and `\\` are literals, other backslashes are kept as is,
/// `*` and `?` are wildcards.
pub(crate) fn parse_pattern(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    chars.next();
                    pieces.push(Piece::Literal(next));
                }
                _ => pieces.push(Piece::Literal('\\')),
            },
            '*' => pieces.push(Piece::Star),
            '?' => pieces.push(Piece::One),
            c => pieces.push(Piece::Literal(c)),
        }
    }
    pieces
}

/// The literal text of a pattern without wildcards, or `None` if it has any.
pub(crate) fn literal_text(pieces: &[Piece]) -> Option<String> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Literal(c) => Some(*c),
            _ => None,
        })
        .collect()
}

pub(crate) fn literal_pieces(text: &str) -> Vec<Piece> {
    text.chars().map(Piece::Literal).collect()
}

/// `windash`: a `-` or `/` that starts a word (not preceded by a word character, followed by
/// one) matches any dash, as the command-line parsers of Windows accept them all.
pub(crate) fn apply_windash(pieces: &mut [Piece]) {
    let is_word = |p: Option<&Piece>| matches!(p, Some(Piece::Literal(c)) if c.is_alphanumeric() || *c == '_');
    for i in 0..pieces.len() {
        if matches!(pieces[i], Piece::Literal('-' | '/'))
            && !is_word(i.checked_sub(1).and_then(|j| pieces.get(j)))
            && is_word(pieces.get(i + 1))
        {
            pieces[i] = Piece::Dash;
        }
    }
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    cased: bool,
    shape: GlobShape,
}

#[derive(Debug, Clone)]
enum GlobShape {
    /// Only literals and `*`: the literal runs between stars.
    Segments {
        segments: Vec<Segment>,
        leading_star: bool,
        trailing_star: bool,
    },
    /// `?` or dashes present: matched character by character.
    General(Vec<Piece>),
}

impl Glob {
    pub(crate) fn new(pieces: &[Piece], cased: bool) -> Glob {
        let fold = |c: char| -> Vec<Piece> {
            if cased {
                vec![Piece::Literal(c)]
            } else {
                c.to_lowercase().map(Piece::Literal).collect()
            }
        };
        let mut normalized: Vec<Piece> = Vec::with_capacity(pieces.len());
        for piece in pieces {
            match piece {
                Piece::Literal(c) => normalized.extend(fold(*c)),
                Piece::Star if normalized.last() == Some(&Piece::Star) => {}
                other => normalized.push(*other),
            }
        }
        let shape = if normalized
            .iter()
            .all(|p| matches!(p, Piece::Literal(_) | Piece::Star))
        {
            let leading_star = normalized.first() == Some(&Piece::Star);
            let trailing_star = normalized.len() > 1 && normalized.last() == Some(&Piece::Star)
                || (normalized.len() == 1 && leading_star);
            let mut segments = vec![String::new()];
            for piece in &normalized {
                match piece {
                    Piece::Literal(c) => segments
                        .last_mut()
                        .expect("invariant: never empty")
                        .push(*c),
                    _ => segments.push(String::new()),
                }
            }
            if leading_star {
                segments.remove(0);
            }
            if trailing_star && segments.last().is_some_and(String::is_empty) {
                segments.pop();
            }
            GlobShape::Segments {
                segments: segments.into_iter().map(Segment::new).collect(),
                leading_star,
                trailing_star,
            }
        } else {
            GlobShape::General(normalized)
        };
        Glob { cased, shape }
    }

    pub(crate) fn is_cased(&self) -> bool {
        self.cased
    }

    /// The longest run of literal characters every value this glob matches contains, lowered
    /// (for the rule index); empty when the pattern has no literal.
    pub(crate) fn longest_literal(&self) -> String {
        let runs: Vec<String> = match &self.shape {
            GlobShape::Segments { segments, .. } => {
                segments.iter().map(|s| s.as_str().to_owned()).collect()
            }
            GlobShape::General(pieces) => {
                let mut runs = vec![String::new()];
                for piece in pieces {
                    match piece {
                        Piece::Literal(c) => runs.last_mut().expect("never empty").push(*c),
                        _ => runs.push(String::new()),
                    }
                }
                runs
            }
        };
        runs.iter()
            .map(|run| {
                if self.cased {
                    run.to_lowercase()
                } else {
                    run.clone()
                }
            })
            // The lowering of a whole text may give a final sigma where the pattern's
            // character-by-character lowering gave `σ`: no literal spans them.
            .flat_map(|run| run.split(['σ', 'ς']).map(str::to_owned).collect::<Vec<_>>())
            .max_by_key(String::len)
            .unwrap_or_default()
    }

    /// Matches `value`, which the caller has lowered when the glob is not cased.
    pub(crate) fn matches(&self, value: &str) -> bool {
        match &self.shape {
            GlobShape::Segments {
                segments,
                leading_star,
                trailing_star,
            } => match_segments(
                segments,
                *leading_star,
                *trailing_star,
                value.as_bytes(),
                Compare::Exact,
            ),
            GlobShape::General(pieces) if value.is_ascii() => {
                let bytes = value.as_bytes();
                match_general(pieces, bytes.len(), |i| char::from(bytes[i]))
            }
            GlobShape::General(pieces) => {
                let chars: Vec<char> = value.chars().collect();
                match_general(pieces, chars.len(), |i| chars[i])
            }
        }
    }

    /// Matches an ASCII `value` as written, not lowered: an uncased glob ignores ASCII case.
    /// Gives the same answer as `matches` on the lowered value, without lowering it.
    pub(crate) fn matches_ascii(&self, value: &str) -> bool {
        debug_assert!(value.is_ascii());
        if self.cased {
            return self.matches(value);
        }
        let bytes = value.as_bytes();
        match &self.shape {
            GlobShape::Segments {
                segments,
                leading_star,
                trailing_star,
            } => match_segments(
                segments,
                *leading_star,
                *trailing_star,
                bytes,
                Compare::AsciiFold,
            ),
            GlobShape::General(pieces) => match_general(pieces, bytes.len(), |i| {
                char::from(bytes[i].to_ascii_lowercase())
            }),
        }
    }
}

/// A literal run of a pattern, with its substring searcher built once: building a searcher per
/// comparison cost more than the search itself.
#[derive(Debug, Clone)]
struct Segment {
    text: String,
    finder: memchr::memmem::Finder<'static>,
}

impl Segment {
    fn new(text: String) -> Segment {
        let finder = memchr::memmem::Finder::new(text.as_bytes()).into_owned();
        Segment { text, finder }
    }

    fn as_str(&self) -> &str {
        &self.text
    }

    fn len(&self) -> usize {
        self.text.len()
    }
}

impl PartialEq<str> for Segment {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

/// How a text is compared with the pattern's literals: as is, or ignoring ASCII case (the
/// text is ASCII and the pattern is not cased: its literals are lowered already).
#[derive(Clone, Copy)]
enum Compare {
    Exact,
    AsciiFold,
}

impl Compare {
    fn eq(self, text: &[u8], literal: &[u8]) -> bool {
        match self {
            Compare::Exact => text == literal,
            Compare::AsciiFold => text.eq_ignore_ascii_case(literal),
        }
    }

    fn starts_with(self, text: &[u8], literal: &[u8]) -> bool {
        text.len() >= literal.len() && self.eq(&text[..literal.len()], literal)
    }

    fn ends_with(self, text: &[u8], literal: &[u8]) -> bool {
        text.len() >= literal.len() && self.eq(&text[text.len() - literal.len()..], literal)
    }

    /// The position of `segment` in `text`.
    fn find(self, text: &[u8], segment: &Segment) -> Option<usize> {
        match self {
            Compare::Exact => segment.finder.find(text),
            Compare::AsciiFold => find_ascii_fold(text, segment.text.as_bytes()),
        }
    }
}

/// Substring search ignoring ASCII case, without lowering the text: candidates are found by
/// the needle's first byte in either case (memchr), then compared.
fn find_ascii_fold(text: &[u8], needle: &[u8]) -> Option<usize> {
    let Some(&first) = needle.first() else {
        return Some(0);
    };
    if text.len() < needle.len() {
        return None;
    }
    let last_start = text.len() - needle.len();
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut from = 0;
    while from <= last_start {
        let found = memchr::memchr2(lower, upper, &text[from..=last_start])?;
        let at = from + found;
        if text[at..at + needle.len()].eq_ignore_ascii_case(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn match_segments(
    segments: &[Segment],
    leading: bool,
    trailing: bool,
    value: &[u8],
    compare: Compare,
) -> bool {
    if segments.is_empty() {
        // `*` alone, or the empty pattern.
        return leading || trailing || value.is_empty();
    }
    if !leading && !trailing && segments.len() == 1 {
        return compare.eq(value, segments[0].text.as_bytes());
    }
    let mut rest = value;
    let mut middle = segments;
    if !leading {
        let prefix = segments[0].text.as_bytes();
        if !compare.starts_with(rest, prefix) {
            return false;
        }
        rest = &rest[prefix.len()..];
        middle = &middle[1..];
    }
    let last = if trailing {
        None
    } else {
        let Some((last, before)) = middle.split_last() else {
            // the single segment was the prefix, and there is a trailing part
            return rest.is_empty();
        };
        middle = before;
        Some(last)
    };
    for segment in middle {
        match compare.find(rest, segment) {
            Some(i) => rest = &rest[i + segment.len()..],
            None => return false,
        }
    }
    match last {
        Some(last) => compare.ends_with(rest, last.text.as_bytes()),
        None => true,
    }
}

fn piece_matches(piece: Piece, c: char) -> bool {
    match piece {
        Piece::Literal(l) => l == c,
        Piece::One => true,
        Piece::Dash => DASHES.contains(&c),
        Piece::Star => false,
    }
}

/// Wildcard matching with single-star backtracking: O(pattern × value) in the worst case.
/// `value` is any sequence of characters (chars, or the bytes of an ASCII text mapped by the
/// caller).
fn match_general(pieces: &[Piece], length: usize, value: impl Fn(usize) -> char) -> bool {
    let (mut p, mut v) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < length {
        if p < pieces.len() && pieces[p] == Piece::Star {
            star = Some((p, v));
            p += 1;
        } else if p < pieces.len() && piece_matches(pieces[p], value(v)) {
            p += 1;
            v += 1;
        } else if let Some((sp, sv)) = star {
            p = sp + 1;
            v = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    pieces[p..].iter().all(|piece| *piece == Piece::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Folding ASCII case while comparing must answer as lowering the text first does.
    #[test]
    fn ascii_folding_agrees_with_lowering() {
        let patterns = [
            "*\\cmd.exe",
            "c:\\windows\\*",
            "*vssadmin*delete*shadows*",
            "exact",
            "*",
            "",
            "a?c*",
            "*-enc *",
            "*Ünïcode*",
            "*\\*literal star*",
            "pre*mid*suf",
        ];
        let texts = [
            "C:\\Windows\\System32\\CMD.EXE",
            "c:\\windows\\system32\\cmd.exe",
            "VSSADMIN.exe Delete Shadows /All",
            "EXACT",
            "exactly",
            "",
            "ABC",
            "abxc",
            "powershell /enc AAAA",
            "powershell -ENC AAAA",
            "has *literal star* inside",
            "PRE-MID-SUF",
            "presuf",
        ];
        for text in &patterns {
            let mut pieces = parse_pattern(text);
            apply_windash(&mut pieces);
            let glob = Glob::new(&pieces, false);
            for value in texts {
                assert_eq!(
                    glob.matches_ascii(value),
                    glob.matches(&value.to_lowercase()),
                    "pattern {text:?} on {value:?}"
                );
            }
        }
    }
}
