//! The Sigma condition grammar: a recursive-descent parser over
//! `or` < `and` < `not` < `1 of`/`all of` < `( … )` (least to most binding), with errors that
//! name the offending token and its column.

use std::fmt;

/// A parsed condition, before identifiers are resolved against the detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A search identifier by name.
    Search(String),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    /// `1 of pattern` (`None` is `them`).
    AnyOf(Option<String>),
    /// `all of pattern` (`None` is `them`).
    AllOf(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "`{w}`"),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
        }
    }
}

/// Splits a condition into words and brackets, each with its 1-based column.
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    let column_of = |byte: usize| text[..byte].chars().count() + 1;
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            tokens.push((Token::Open, column_of(at)));
            chars.next();
        } else if c == ')' {
            tokens.push((Token::Close, column_of(at)));
            chars.next();
        } else if is_word_char(c) {
            let mut word = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if !is_word_char(c) {
                    break;
                }
                word.push(c);
                chars.next();
            }
            tokens.push((Token::Word(word), column_of(at)));
        } else {
            return Err(format!(
                "condition: unexpected character `{c}` at column {}",
                column_of(at)
            ));
        }
    }
    Ok(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.')
}

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

/// Parses one condition string.
pub fn parse_condition(text: &str) -> Result<Condition, String> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        position: 0,
        end_column: text.chars().count() + 1,
        depth: 0,
    };
    if parser.tokens.is_empty() {
        return Err("condition: empty condition".to_owned());
    }
    let condition = parser.parse_or()?;
    match parser.peek() {
        None => Ok(condition),
        Some((token, column)) => Err(format!("condition: unexpected {token} at column {column}")),
    }
}

/// Nesting bound for brackets and `not`, so a hostile condition cannot overflow the stack.
const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<(Token, usize)>,
    position: usize,
    end_column: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<(&Token, usize)> {
        self.tokens.get(self.position).map(|(t, c)| (t, *c))
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some((Token::Word(w), _)) if is_keyword(w, keyword))
    }

    fn unexpected(&self, expected: &str) -> String {
        match self.peek() {
            Some((token, column)) => {
                format!("condition: unexpected {token} at column {column}, expected {expected}")
            }
            None => format!(
                "condition: unexpected end at column {}, expected {expected}",
                self.end_column
            ),
        }
    }

    fn parse_or(&mut self) -> Result<Condition, String> {
        let mut terms = vec![self.parse_and()?];
        while self.peek_keyword("or") {
            self.position += 1;
            terms.push(self.parse_and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Condition::Or(terms)
        })
    }

    fn parse_and(&mut self) -> Result<Condition, String> {
        let mut terms = vec![self.parse_not()?];
        while self.peek_keyword("and") {
            self.position += 1;
            terms.push(self.parse_not()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Condition::And(terms)
        })
    }

    fn parse_not(&mut self) -> Result<Condition, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("condition: nested deeper than {MAX_DEPTH} levels"));
        }
        let result = if self.peek_keyword("not") {
            self.position += 1;
            self.parse_not()
                .map(|inner| Condition::Not(Box::new(inner)))
        } else {
            self.parse_primary()
        };
        self.depth -= 1;
        result
    }

    fn parse_primary(&mut self) -> Result<Condition, String> {
        let Some((token, column)) = self.peek() else {
            return Err(self.unexpected("a search identifier"));
        };
        match token.clone() {
            Token::Open => {
                self.position += 1;
                let inner = self.parse_or()?;
                match self.peek() {
                    Some((Token::Close, _)) => {
                        self.position += 1;
                        Ok(inner)
                    }
                    _ => Err(self.unexpected("`)`")),
                }
            }
            Token::Close => Err(self.unexpected("a search identifier")),
            Token::Word(word) => {
                let quantifier = if word == "1" {
                    Some(false)
                } else if is_keyword(&word, "all") {
                    Some(true)
                } else {
                    None
                };
                if let Some(all) = quantifier
                    && matches!(self.tokens.get(self.position + 1), Some((Token::Word(w), _)) if is_keyword(w, "of"))
                {
                    self.position += 2;
                    let target = match self.peek() {
                        Some((Token::Word(w), _)) if is_keyword(w, "them") => None,
                        Some((Token::Word(w), _)) if !is_reserved(w) => Some(w.clone()),
                        _ => {
                            return Err(self.unexpected("a search identifier pattern or `them`"));
                        }
                    };
                    self.position += 1;
                    return Ok(if all {
                        Condition::AllOf(target)
                    } else {
                        Condition::AnyOf(target)
                    });
                }
                if is_reserved(&word) {
                    return Err(format!("condition: unexpected `{word}` at column {column}"));
                }
                if word.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!(
                        "condition: unsupported quantifier `{word} of` at column {column} (only `1 of` and `all of`)"
                    ));
                }
                if word.contains('*') {
                    return Err(format!(
                        "condition: wildcard identifier `{word}` at column {column} is only allowed after `1 of` or `all of`"
                    ));
                }
                self.position += 1;
                Ok(Condition::Search(word))
            }
        }
    }
}

fn is_reserved(word: &str) -> bool {
    ["and", "or", "not", "of", "them"]
        .iter()
        .any(|k| is_keyword(word, k))
}

/// Whether an identifier matches a `1 of`/`all of` pattern (`*` matches any run of characters).
pub(crate) fn identifier_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(r) = rest.strip_prefix(first) else {
        return false;
    };
    rest = r;
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}
