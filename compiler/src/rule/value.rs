//! Sigma strings: literal text with `*` and `?` wildcards, after the
//! specification's backslash-escape rules.

use std::fmt;

/// One piece of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Piece {
    /// Literal text.
    Literal(String),
    /// `*`: any run of characters, possibly empty.
    AnyRun,
    /// `?`: exactly one character.
    AnyChar,
    /// `%name%` under `expand`, not yet resolved.
    Placeholder(String),
}

/// A Sigma string value: literal pieces and wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Pattern {
    pieces: Vec<Piece>,
}

impl Pattern {
    /// Parses a value by the specification's rules: `*` and `?` are wildcards;
    /// `\*`, `\?` and `\\` are escapes; a backslash before anything else (or at
    /// the end) is a literal backslash.
    pub fn parse(text: &str) -> Self {
        let mut p = Pattern::default();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => p.push(Piece::AnyRun),
                '?' => p.push(Piece::AnyChar),
                '\\' => match chars.peek() {
                    Some(&next @ ('*' | '?' | '\\')) => {
                        chars.next();
                        p.push_char(next);
                    }
                    _ => p.push_char('\\'),
                },
                other => p.push_char(other),
            }
        }
        p
    }

    /// A pattern that is exactly this text, no wildcards.
    pub fn literal(text: &str) -> Self {
        let mut p = Pattern::default();
        if !text.is_empty() {
            p.pieces.push(Piece::Literal(text.to_string()));
        }
        p
    }

    /// The pieces.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Builds from pieces, merging adjacent literals and runs.
    pub fn from_pieces(pieces: impl IntoIterator<Item = Piece>) -> Self {
        let mut p = Pattern::default();
        for piece in pieces {
            p.push(piece);
        }
        p
    }

    fn push_char(&mut self, c: char) {
        if let Some(Piece::Literal(s)) = self.pieces.last_mut() {
            s.push(c);
        } else {
            self.pieces.push(Piece::Literal(c.to_string()));
        }
    }

    /// Appends a piece; `**` collapses to `*` and adjacent literals merge.
    pub fn push(&mut self, piece: Piece) {
        match (self.pieces.last_mut(), piece) {
            (Some(Piece::AnyRun), Piece::AnyRun) => {}
            (Some(Piece::Literal(s)), Piece::Literal(t)) => s.push_str(&t),
            (_, Piece::Literal(t)) if t.is_empty() => {}
            (_, piece) => self.pieces.push(piece),
        }
    }

    /// True when the pattern has `*` or `?`.
    pub fn has_wildcards(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::AnyRun | Piece::AnyChar))
    }

    /// True when an `expand` placeholder is left.
    pub fn has_placeholders(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Placeholder(_)))
    }

    /// The text if the pattern is purely literal.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }

    /// `*value*` without doubling a `*` that is already there.
    pub fn contains(self) -> Self {
        self.starts_any().ends_any()
    }

    /// `*value`.
    pub fn starts_any(self) -> Self {
        if self.pieces.first() == Some(&Piece::AnyRun) {
            return self;
        }
        let mut pieces = vec![Piece::AnyRun];
        pieces.extend(self.pieces);
        Pattern { pieces }
    }

    /// `value*`.
    pub fn ends_any(mut self) -> Self {
        self.push(Piece::AnyRun);
        self
    }

    /// Maps literal text, keeping wildcards (for `windash`, placeholders).
    pub fn map_literals(&self, mut f: impl FnMut(&str) -> String) -> Self {
        Pattern::from_pieces(self.pieces.iter().map(|p| match p {
            Piece::Literal(s) => Piece::Literal(f(s)),
            other => other.clone(),
        }))
    }

    /// Total length of literal text.
    pub fn literal_len(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len(),
                _ => 0,
            })
            .sum()
    }
}

/// Prints in Sigma syntax, escaping what needs escaping, so the output reads
/// back to the same pattern.
impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, piece) in self.pieces.iter().enumerate() {
            match piece {
                Piece::AnyRun => f.write_str("*")?,
                Piece::AnyChar => f.write_str("?")?,
                Piece::Placeholder(name) => write!(f, "%{name}%")?,
                Piece::Literal(s) => {
                    let followed_by_wildcard =
                        matches!(self.pieces.get(i + 1), Some(Piece::AnyRun | Piece::AnyChar));
                    let mut chars = s.chars().peekable();
                    while let Some(c) = chars.next() {
                        match c {
                            '*' | '?' => write!(f, "\\{c}")?,
                            '\\' => {
                                // A backslash only needs escaping where the next
                                // character would otherwise combine with it.
                                let next = chars.peek().copied();
                                let needs = matches!(next, Some('*' | '?' | '\\'))
                                    || (next.is_none() && followed_by_wildcard);
                                f.write_str(if needs { "\\\\" } else { "\\" })?;
                            }
                            other => write!(f, "{other}")?,
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Piece::*;

    fn lit(s: &str) -> Piece {
        Literal(s.into())
    }

    #[test]
    fn escapes_follow_the_specification() {
        assert_eq!(Pattern::parse(r"a\*b").pieces(), &[lit("a*b")]);
        assert_eq!(Pattern::parse(r"a\?").pieces(), &[lit("a?")]);
        assert_eq!(Pattern::parse(r"C:\\*").pieces(), &[lit(r"C:\"), AnyRun]);
        assert_eq!(Pattern::parse(r"\\\*").pieces(), &[lit(r"\*")]);
        assert_eq!(Pattern::parse(r"\\\\").pieces(), &[lit(r"\\")]);
        assert_eq!(
            Pattern::parse(r"C:\Windows").pieces(),
            &[lit(r"C:\Windows")]
        );
        assert_eq!(Pattern::parse(r"Files\").pieces(), &[lit(r"Files\")]);
        assert_eq!(Pattern::parse(r"\*.bak").pieces(), &[lit("*.bak")]);
        assert_eq!(
            Pattern::parse("a*b?").pieces(),
            &[lit("a"), AnyRun, lit("b"), AnyChar]
        );
    }

    #[test]
    fn contains_does_not_double_wildcards() {
        let p = Pattern::parse("*x").contains();
        assert_eq!(p.pieces(), &[AnyRun, lit("x"), AnyRun]);
    }

    #[test]
    fn display_round_trips() {
        for text in [
            r"a\*b",
            r"C:\\*",
            r"\\\*",
            r"C:\Windows\",
            "a*b?c",
            r"x\\\\",
        ] {
            let p = Pattern::parse(text);
            assert_eq!(Pattern::parse(&p.to_string()), p, "{text}");
        }
    }
}
