//! Wording shared by every layer's messages. Lives at the bottom of the layers so that
//! `config`, `plan`, `apply` and `ops` can all use it without depending on each other.

/// The plural ending of a count: `""` for one, `"s"` otherwise (`"{n} change{}"`).
pub fn s(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
