//! Secrets in config files: a value whose `Debug` never shows it, given either inline
//! (`password = "..."`) or as a file (`password_file = "/path"`, e.g. a systemd credential).
//!
//! This crate does no I/O: [`resolve`] is handed the function that reads the file.

use serde::Deserialize;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// A secret config value. `Debug` prints `"***"` (or `""` when empty), so a config struct can
/// be logged whole; the value itself is only reachable through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: for the wire or a signature, never for a log line.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// A secret that cannot be loaded. Messages name the key and the file, never the contents.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("invalid `{key}`: `{key}` and `{key}_file` are both set; keep one")]
    Both { key: String },
    #[error("invalid `{key}_file`: cannot read {}: {source}", path.display())]
    Unreadable {
        key: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("invalid `{key}_file`: {} is empty", path.display())]
    Empty { key: String, path: PathBuf },
}

/// Settles the pair `key` / `key_file`: with a file, reads it with `read` (one trailing newline
/// trimmed) into `value` and clears `file`, so resolving twice changes nothing. An empty file
/// is refused: for a token, empty would mean "no token required". `read` takes the path by
/// value so that `std::fs::read_to_string` itself can be passed.
pub fn resolve(
    key: &str,
    value: &mut Option<Secret>,
    file: &mut Option<PathBuf>,
    read: impl FnOnce(PathBuf) -> io::Result<String>,
) -> Result<(), SecretError> {
    let Some(path) = file.take() else {
        return Ok(());
    };
    if value.is_some() {
        return Err(SecretError::Both {
            key: key.to_owned(),
        });
    }
    let text = match read(path.clone()) {
        Ok(text) => text,
        Err(source) => {
            return Err(SecretError::Unreadable {
                key: key.to_owned(),
                path,
                source,
            });
        }
    };
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(SecretError::Empty {
            key: key.to_owned(),
            path,
        });
    }
    *value = Some(Secret::new(text));
    Ok(())
}

/// [`resolve`] for a secret whose empty value, its default, means "not set"
/// (`agent_token = ""`): an empty `value` beside `key_file` is not "both set".
pub fn resolve_empty_as_unset(
    key: &str,
    value: &mut Secret,
    file: &mut Option<PathBuf>,
    read: impl FnOnce(PathBuf) -> io::Result<String>,
) -> Result<(), SecretError> {
    let mut set = (!value.is_empty()).then(|| value.clone());
    resolve(key, &mut set, file, read)?;
    *value = set.unwrap_or_default();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        value: Option<&str>,
        file: Option<&str>,
        read: io::Result<&str>,
    ) -> Result<Option<String>, String> {
        let mut value = value.map(Secret::new);
        let mut file = file.map(PathBuf::from);
        let read = |_: PathBuf| read.map(str::to_owned);
        resolve("smtp.password", &mut value, &mut file, read).map_err(|e| e.to_string())?;
        assert_eq!(file, None);
        Ok(value.map(|s| s.expose().to_owned()))
    }

    #[test]
    fn key_or_file_gives_the_secret() {
        let unused = || Err(io::Error::other("not read"));
        assert_eq!(check(Some("pw"), None, unused()), Ok(Some("pw".into())));
        assert_eq!(check(None, None, unused()), Ok(None));
        assert_eq!(
            check(None, Some("/run/pw"), Ok("pw\n")),
            Ok(Some("pw".into()))
        );
        assert_eq!(
            check(None, Some("/run/pw"), Ok("p w \r\n")),
            Ok(Some("p w ".into()))
        );
        assert_eq!(
            check(None, Some("/run/pw"), Ok("pw\n\n")),
            Ok(Some("pw\n".into()))
        );
        let mut token = Secret::default();
        let read = |_: PathBuf| Ok("t\n".to_owned());
        resolve_empty_as_unset("token", &mut token, &mut Some("/t".into()), read).unwrap();
        assert_eq!(token.expose(), "t");
    }

    #[test]
    fn errors_name_both_keys_or_the_file_never_the_secret() {
        assert_eq!(
            check(Some("pw"), Some("/run/pw"), Ok("pw")).unwrap_err(),
            "invalid `smtp.password`: `smtp.password` and `smtp.password_file` are both set; keep one"
        );
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let err = check(None, Some("/run/pw"), Err(denied)).unwrap_err();
        assert!(
            err.starts_with("invalid `smtp.password_file`: cannot read /run/pw: "),
            "{err}"
        );
        assert_eq!(
            check(None, Some("/run/pw"), Ok("\n")).unwrap_err(),
            "invalid `smtp.password_file`: /run/pw is empty"
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret: Secret = deserialize_str("hunter2");
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(format!("{secret:?}"), "\"***\"");
        assert_eq!(format!("{:?}", Some(secret)), "Some(\"***\")");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }

    /// `transparent`: a config string deserializes straight into a `Secret`.
    fn deserialize_str(text: &str) -> Secret {
        use serde::de::IntoDeserializer;
        let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            text.into_deserializer();
        Secret::deserialize(de).unwrap()
    }
}
