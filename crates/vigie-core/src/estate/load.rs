//! Reading the estate from the text of its YAML files (the binary reads the directory; nothing
//! here touches the filesystem). Guards the loading contract: every problem of every file is
//! reported at once, each with its file, a line and, when known, a field path — a problem in
//! one document never hides one in another.

use serde_saphyr::{Error as YamlError, MessageFormatter, Spanned, UserMessageFormatter};
use std::collections::{BTreeMap, HashMap};

use super::checks::check_findings;
use super::locate::{LocatedNode, field_at, line_of_field};
use super::validate::validate_client;
use super::{Client, Diagnostic, Estate};

/// One estate file as the binary read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstateFile {
    pub path: String,
    pub text: String,
}

/// One YAML document of a file: its text and the file line it starts on.
#[derive(Debug, PartialEq)]
struct Document {
    first_line: usize,
    text: String,
}

impl Document {
    /// The file line of a line of this document (both 1-based).
    fn file_line(&self, document_line: u64) -> usize {
        let document_line = usize::try_from(document_line).unwrap_or(usize::MAX);
        (self.first_line + document_line).saturating_sub(1)
    }
}

/// Parses and validates every client document of `files`; the estate if all of them are
/// sound, otherwise every problem found, in file order and, within a document, line order.
pub fn load_estate(files: &[EstateFile]) -> Result<Estate, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let mut clients = BTreeMap::new();
    // Checks that do not read: left out and reported, the rest loads (see `checks`).
    let mut check_rejections = Vec::new();
    // Where each client was first defined, to name it when a second file defines it again.
    let mut defined_at: HashMap<String, String> = HashMap::new();
    for file in files {
        for document in split_documents(&file.text) {
            let (client, tree) = match parse_document(&file.path, &document) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => continue,
                Err(diagnostic) => {
                    diagnostics.push(diagnostic);
                    continue;
                }
            };
            let locate = |field: &str| document.file_line(line_of_field(&tree, field));
            let mut found: Vec<Diagnostic> = validate_client(&client)
                .into_iter()
                .map(|finding| {
                    let message = match &finding.first_defined {
                        Some(first) => {
                            format!(
                                "{} (first defined on line {})",
                                finding.message,
                                locate(first)
                            )
                        }
                        None => finding.message,
                    };
                    Diagnostic {
                        path: file.path.clone(),
                        line: Some(locate(&finding.field)),
                        field: finding.field,
                        message,
                    }
                })
                .collect();
            let mut rejected: Vec<Diagnostic> = check_findings(&client)
                .into_iter()
                .map(|finding| Diagnostic {
                    path: file.path.clone(),
                    line: Some(locate(&finding.field)),
                    message: match &finding.first_defined {
                        Some(first) => format!(
                            "{} (first defined on line {})",
                            finding.message,
                            locate(first)
                        ),
                        None => finding.message,
                    },
                    field: finding.field,
                })
                .collect();
            rejected.sort_by_key(|diagnostic| diagnostic.line);
            check_rejections.extend(rejected);
            let here = format!("{}:{}", file.path, locate("id"));
            match defined_at.get(&client.id) {
                Some(first) => found.push(Diagnostic {
                    path: file.path.clone(),
                    line: Some(locate("id")),
                    field: "id".to_string(),
                    message: format!("client `{}` is already defined at {first}", client.id),
                }),
                None => {
                    defined_at.insert(client.id.clone(), here);
                    clients.insert(client.id.clone(), client);
                }
            }
            found.sort_by_key(|diagnostic| diagnostic.line);
            diagnostics.extend(found);
        }
    }
    if diagnostics.is_empty() {
        let mut estate = Estate::new(clients);
        estate.check_rejections = check_rejections;
        Ok(estate)
    } else {
        Err(diagnostics)
    }
}

/// Cuts a file into its documents at `---` and `...` lines, so that each is parsed on its own
/// and a broken one cannot hide the next. The YAML spec forbids these markers at the start of
/// a line inside any scalar, so cutting on text is exact. The `---` itself is blanked, not
/// removed, to keep columns and line numbers.
fn split_documents(text: &str) -> Vec<Document> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut documents = Vec::new();
    let mut current = Document {
        first_line: 1,
        text: String::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(rest) = strip_marker(line, "---") {
            let next = Document {
                first_line: number,
                text: format!("   {rest}\n"),
            };
            documents.push(std::mem::replace(&mut current, next));
        } else if strip_marker(line, "...").is_some() {
            let next = Document {
                first_line: number + 1,
                text: String::new(),
            };
            documents.push(std::mem::replace(&mut current, next));
        } else {
            current.text.push_str(line);
            current.text.push('\n');
        }
    }
    documents.push(current);
    documents
}

fn strip_marker<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(marker)?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

/// The client of one document with the document's skeleton, `None` for an empty document.
/// The document is read twice: once as a skeleton to locate things, once as a client.
fn parse_document(
    path: &str,
    document: &Document,
) -> Result<Option<(Client, Spanned<LocatedNode>)>, Diagnostic> {
    let options = serde_saphyr::options! { with_snippet: false };
    let tree: Spanned<LocatedNode> =
        serde_saphyr::from_str_with_options(&document.text, options.clone())
            .map_err(|error| yaml_diagnostic(path, document, None, &error))?;
    if matches!(tree.value, LocatedNode::Null) {
        return Ok(None);
    }
    let client = serde_saphyr::from_str_with_options(&document.text, options)
        .map_err(|error| yaml_diagnostic(path, document, Some(&tree), &error))?;
    Ok(Some((client, tree)))
}

/// A syntax or shape error from serde-saphyr, at the line it reports and, when the document's
/// skeleton could be read, at the field found there.
fn yaml_diagnostic(
    path: &str,
    document: &Document,
    tree: Option<&Spanned<LocatedNode>>,
    error: &YamlError,
) -> Diagnostic {
    let location = error.location().filter(|location| location.line() > 0);
    let field = match (tree, location) {
        (Some(tree), Some(location)) => field_at(tree, location.line(), location.column()),
        _ => String::new(),
    };
    Diagnostic {
        path: path.to_string(),
        line: Some(match location {
            Some(location) => document.file_line(location.line()),
            None => document.first_line,
        }),
        field,
        message: UserMessageFormatter
            .format_message(original_error(error))
            .into_owned(),
    }
}

/// The error itself, without the wrappers serde-saphyr adds for snippets and aliases.
fn original_error(mut error: &YamlError) -> &YamlError {
    while let YamlError::AliasError { error: inner, .. }
    | YamlError::WithSnippet { error: inner, .. } = error
    {
        error = inner;
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_keeping_their_file_lines() {
        let documents = split_documents("a: 1\n---\nb: 2\n--- # third\nc: 3\n...\nd: 4\n");
        let starts: Vec<(usize, &str)> = documents
            .iter()
            .map(|document| (document.first_line, document.text.as_str()))
            .collect();
        assert_eq!(
            starts,
            [
                (1, "a: 1\n"),
                (2, "   \nb: 2\n"),
                (4, "    # third\nc: 3\n"),
                (7, "d: 4\n")
            ]
        );
    }

    #[test]
    fn does_not_split_on_dashes_inside_a_line() {
        let documents = split_documents("a: ---\nb: |\n  ---\n----: x\n");
        assert_eq!(documents.len(), 1);
    }
}
