//! `.proto` comments become doc comments, and rustdoc compiles the code blocks of doc
//! comments as doctests. A comment's examples are in other languages (googleapis' `Color`
//! carries Java, Objective-C and JavaScript; OTLP's `Span` a JSON fragment), so each would be a
//! failing doctest in the user's crate. Every code block is fenced as `text` before prost-build
//! reads the comments: shown as written, never compiled.
//!
//! Continuation lines of a list item written flush left (etcd's `TxnRequest`, googleapis'
//! `Date`) are indented under the item, which is how Markdown reads them anyway: clippy's
//! `doc_lazy_continuation` would otherwise fail a `-D warnings` build of the including crate.

use prost_types::FileDescriptorSet;

/// Indentation that makes a line after a blank line a Markdown code block.
const CODE_INDENT: usize = 4;

/// Fences the code blocks of every leading and trailing comment in `fds` as `text`.
pub(crate) fn fence_code_blocks(fds: &mut FileDescriptorSet) {
    let comments = fds
        .file
        .iter_mut()
        .filter_map(|file| file.source_code_info.as_mut())
        .flat_map(|info| info.location.iter_mut())
        .flat_map(|location| {
            [
                &mut location.leading_comments,
                &mut location.trailing_comments,
            ]
        })
        .flatten();
    for comment in comments {
        *comment = fence_comment(comment);
    }
}

#[derive(PartialEq)]
enum Block {
    Prose,
    /// Inside a fenced block opened with this run of backticks or tildes.
    Fenced(String),
    /// Inside an indented block; blank lines seen but not yet written.
    Indented {
        blank_lines: usize,
    },
}

/// The comment with each indented code block wrapped in a `text` fence and each fenced block's
/// language replaced by `text`.
fn fence_comment(comment: &str) -> String {
    let lines: Vec<&str> = comment.split('\n').collect();
    let base = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| indent_of(line))
        .min()
        .unwrap_or(0);
    let margin = " ".repeat(base);
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 2);
    let mut block = Block::Prose;
    let mut previous_blank = true;
    // The column a list item's text starts at, while in one.
    let mut list_item: Option<usize> = None;
    for line in lines {
        let blank = line.trim().is_empty();
        let indent = indent_of(line);
        if let Block::Indented { blank_lines } = &mut block {
            if blank {
                *blank_lines += 1;
                previous_blank = true;
                continue;
            }
            if indent >= base + CODE_INDENT {
                out.extend(std::iter::repeat_n(String::new(), *blank_lines));
                *blank_lines = 0;
                out.push(format!("{margin}{}", dedent(line, base + CODE_INDENT)));
                continue;
            }
            let blank_lines = *blank_lines;
            out.push(format!("{margin}```"));
            out.extend(std::iter::repeat_n(String::new(), blank_lines));
            block = Block::Prose;
        }
        match &block {
            Block::Fenced(marker) => {
                if line.trim_start().starts_with(marker.as_str()) {
                    block = Block::Prose;
                }
                out.push(line.to_owned());
            }
            Block::Prose => {
                let trimmed = line.trim_start();
                if let Some(marker) = fence_marker(trimmed) {
                    out.push(format!(
                        "{}{marker}text",
                        &line[..line.len() - trimmed.len()]
                    ));
                    block = Block::Fenced(marker);
                } else if !blank && previous_blank && indent >= base + CODE_INDENT {
                    out.push(format!("{margin}```text"));
                    out.push(format!("{margin}{}", dedent(line, base + CODE_INDENT)));
                    block = Block::Indented { blank_lines: 0 };
                    list_item = None;
                } else if let Some(width) = list_marker(trimmed) {
                    // prost-build then puts one space before a line that starts with none,
                    // and one more before a line that starts with two or more: the item's
                    // text ends up at `final_indent + width`, and a continuation written
                    // with `n >= 2` spaces ends up at `n + 1`.
                    let final_indent = if indent <= 1 { 1 } else { indent + 1 };
                    list_item = Some(final_indent + width - 1);
                    out.push(line.to_owned());
                } else if blank {
                    list_item = None;
                    out.push(line.to_owned());
                } else if let Some(column) = list_item.filter(|column| indent < *column) {
                    out.push(format!("{}{trimmed}", " ".repeat(column)));
                } else {
                    out.push(line.to_owned());
                }
            }
            Block::Indented { .. } => unreachable!("closed above"),
        }
        previous_blank = blank;
    }
    match block {
        Block::Indented { blank_lines } => {
            out.push(format!("{margin}```"));
            out.extend(std::iter::repeat_n(String::new(), blank_lines));
        }
        Block::Fenced(marker) => out.push(format!("{margin}{marker}")),
        Block::Prose => {}
    }
    out.join("\n")
}

/// The width of the list marker starting `line` (`* `, `- `, `+ `, `1. `, `2) `), if one does.
fn list_marker(line: &str) -> Option<usize> {
    if ["* ", "- ", "+ "]
        .iter()
        .any(|marker| line.starts_with(marker))
    {
        return Some(2);
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let rest = &line[digits..];
    (digits > 0 && digits <= 9 && (rest.starts_with(". ") || rest.starts_with(") ")))
        .then_some(digits + 2)
}

/// The backticks or tildes (three or more) opening a fenced block, if `line` opens one.
fn fence_marker(line: &str) -> Option<String> {
    let fence_char = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let marker: String = line.chars().take_while(|c| *c == fence_char).collect();
    (marker.len() >= 3).then_some(marker)
}

/// Leading whitespace, a tab counting as four spaces.
fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// `line` less `width` columns of indentation.
fn dedent(line: &str, width: usize) -> &str {
    let mut removed = 0;
    let mut start = 0;
    for (index, c) in line.char_indices() {
        if removed >= width || !c.is_whitespace() {
            break;
        }
        removed += if c == '\t' { 4 } else { 1 };
        start = index + c.len_utf8();
    }
    &line[start..]
}

#[cfg(test)]
mod tests {
    use super::fence_comment;

    #[test]
    fn an_indented_example_is_fenced_as_text() {
        let comment = " Example:\n\n     int x = 1;\n       y();\n\n     z();\n After.\n";
        assert_eq!(
            fence_comment(comment),
            " Example:\n\n ```text\n int x = 1;\n   y();\n\n z();\n ```\n After.\n"
        );
    }

    #[test]
    fn a_fenced_block_becomes_text_and_an_unclosed_one_is_closed() {
        assert_eq!(
            fence_comment(" ```rust\n let x = 1;\n ```\n"),
            " ```text\n let x = 1;\n ```\n"
        );
        assert_eq!(fence_comment(" ~~~\n a\n"), " ~~~text\n a\n\n ~~~");
    }

    #[test]
    fn list_item_continuations_are_indented_under_the_item() {
        // Two spaces and then prost-build's one: the text column of ` * ` and ` 1. `.
        let comment =
            " * A credit card expiration\n date\n\n After.\n 1. A guard.\n It may check.\n";
        assert_eq!(
            fence_comment(comment),
            " * A credit card expiration\n  date\n\n After.\n 1. A guard.\n   It may check.\n"
        );
    }

    #[test]
    fn continuation_lines_and_small_indents_stay_prose() {
        // A line continuing a paragraph is not code, nor one indented less than four.
        let comment = " The list:\n     continued here\n\n   (a & b)\n";
        assert_eq!(fence_comment(comment), comment);
    }
}
