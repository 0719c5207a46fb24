//! Secret references (rule 8): reading a password from an environment variable or a file.
//!
//! Called at plan/apply time, only for objects whose password must be sent (create or a
//! changed `rotation`). Errors name the variable or the file, never the value; the value
//! lives in a [`SecretValue`], whose `Debug`/`Display` print `***`.

use std::path::PathBuf;

use thiserror::Error;

use crate::model::{SecretRef, SecretValue};

/// Why a secret could not be read. Never carries the secret.
#[derive(Debug, Error)]
pub enum SecretError {
    #[error("environment variable `{var}` is not set; export it before running roster")]
    EnvNotSet { var: String },
    #[error("environment variable `{var}` does not hold valid UTF-8 text")]
    EnvNotUnicode { var: String },
    #[error("cannot read the password file `{}`: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the password file `{}` is not UTF-8 text", path.display())]
    FileNotUnicode { path: PathBuf },
    #[error("the password from {origin} is empty")]
    Empty { origin: String },
    #[error(
        "a password reference must name exactly one source, `env` or `file`; write \
         `password: {{ env: VARIABLE }}` or `password: {{ file: PATH }}`"
    )]
    Shape,
}

/// Reads the secret a reference points to. A file's content loses one trailing newline
/// (`\n` or `\r\n`), as editors add one.
pub fn resolve(r: &SecretRef) -> Result<SecretValue, SecretError> {
    match (&r.env, &r.file) {
        (Some(var), None) => {
            let value = std::env::var(var).map_err(|e| match e {
                std::env::VarError::NotPresent => SecretError::EnvNotSet { var: var.clone() },
                std::env::VarError::NotUnicode(_) => {
                    SecretError::EnvNotUnicode { var: var.clone() }
                }
            })?;
            if value.is_empty() {
                return Err(SecretError::Empty {
                    origin: format!("environment variable `{var}`"),
                });
            }
            Ok(SecretValue(value))
        }
        (None, Some(file)) => {
            let path = PathBuf::from(file);
            let bytes = std::fs::read(&path).map_err(|source| SecretError::File {
                path: path.clone(),
                source,
            })?;
            let mut text = String::from_utf8(bytes)
                .map_err(|_| SecretError::FileNotUnicode { path: path.clone() })?;
            if text.ends_with("\r\n") {
                text.truncate(text.len() - 2);
            } else if text.ends_with('\n') {
                text.truncate(text.len() - 1);
            }
            if text.is_empty() {
                return Err(SecretError::Empty {
                    origin: format!("file `{}`", path.display()),
                });
            }
            Ok(SecretValue(text))
        }
        _ => Err(SecretError::Shape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n\n").unwrap();
        let r = SecretRef {
            file: Some(f.to_string_lossy().into_owned()),
            ..Default::default()
        };
        assert_eq!(resolve(&r).unwrap().0, "s3cret\n");
    }

    #[test]
    fn missing_env_names_the_variable_only() {
        let r = SecretRef {
            env: Some("ROSTER_TEST_SURELY_UNSET_VARIABLE".into()),
            ..Default::default()
        };
        let e = resolve(&r).unwrap_err().to_string();
        assert!(e.contains("ROSTER_TEST_SURELY_UNSET_VARIABLE"), "{e}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let r = SecretRef {
            file: Some("/nonexistent/roster-pw".into()),
            ..Default::default()
        };
        let e = resolve(&r).unwrap_err();
        assert!(matches!(e, SecretError::File { .. }));
        assert!(e.to_string().contains("/nonexistent/roster-pw"));
    }

    #[test]
    fn both_sources_is_a_shape_error() {
        let r = SecretRef {
            env: Some("A".into()),
            file: Some("b".into()),
            ..Default::default()
        };
        assert!(matches!(resolve(&r), Err(SecretError::Shape)));
    }

    #[test]
    fn secret_value_never_prints() {
        let v = SecretValue("hunter2".into());
        assert_eq!(format!("{v} {v:?}"), "*** ***");
    }
}
