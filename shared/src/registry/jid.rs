//! Bare JIDs as registry keys: checked against the characters RFC 7622 forbids, and
//! lower-cased the way MongooseIM's event pushers write user ids.

/// The longest local part or domain part, in bytes (RFC 7622, section 3.1).
pub const MAX_PART_BYTES: usize = 1023;

/// Characters a local part may not hold (RFC 7622, section 3.3.1).
const FORBIDDEN_IN_LOCAL: &[char] = &['"', '&', '\'', '/', ':', '<', '>', '@'];

/// Why a text is not a bare JID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    #[error("the JID is empty")]
    Empty,
    #[error("{0:?} has no local part: a user JID is local@domain")]
    NoLocalPart(String),
    #[error("{0:?} has an empty domain")]
    NoDomain(String),
    #[error("{0:?} has a resource: a bare JID (local@domain) is expected")]
    Resource(String),
    #[error("the {part} part may not contain {character:?}")]
    ForbiddenCharacter { part: &'static str, character: char },
    #[error("the {part} part is longer than {MAX_PART_BYTES} bytes")]
    TooLong { part: &'static str },
}

/// Checks that `raw` is a bare JID `local@domain` and returns it lower-cased.
///
/// # Errors
///
/// A [`JidError`] saying what is wrong; a resource (`/...`) is refused, see [`bare_jid_of`].
pub fn bare_jid(raw: &str) -> Result<String, JidError> {
    if raw.is_empty() {
        return Err(JidError::Empty);
    }
    if raw.contains('/') {
        return Err(JidError::Resource(raw.to_owned()));
    }
    let Some((local, domain)) = raw.split_once('@') else {
        return Err(JidError::NoLocalPart(raw.to_owned()));
    };
    if local.is_empty() {
        return Err(JidError::NoLocalPart(raw.to_owned()));
    }
    if domain.is_empty() {
        return Err(JidError::NoDomain(raw.to_owned()));
    }
    check_part("local", local, FORBIDDEN_IN_LOCAL)?;
    check_part("domain", domain, &['@'])?;
    Ok(raw.to_lowercase())
}

/// The bare JID of a full or bare JID (the resource, if any, is dropped), lower-cased.
///
/// # Errors
///
/// A [`JidError`] when what is left is not a bare JID.
pub fn bare_jid_of(raw: &str) -> Result<String, JidError> {
    let bare = raw.split_once('/').map_or(raw, |(bare, _resource)| bare);
    bare_jid(bare)
}

fn check_part(part: &'static str, text: &str, forbidden: &[char]) -> Result<(), JidError> {
    if text.len() > MAX_PART_BYTES {
        return Err(JidError::TooLong { part });
    }
    match text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || forbidden.contains(c))
    {
        Some(character) => Err(JidError::ForbiddenCharacter { part, character }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_jids_are_lower_cased() {
        assert_eq!(bare_jid("Bob@Example.COM").unwrap(), "bob@example.com");
        assert_eq!(
            bare_jid("+15550100@example.com").unwrap(),
            "+15550100@example.com"
        );
        assert_eq!(
            bare_jid("Ünïcödé@example.com").unwrap(),
            "ünïcödé@example.com"
        );
    }

    #[test]
    fn resources_are_refused_or_dropped() {
        assert_eq!(
            bare_jid("bob@example.com/phone"),
            Err(JidError::Resource("bob@example.com/phone".to_owned()))
        );
        assert_eq!(
            bare_jid_of("Alice@Localhost/res1").unwrap(),
            "alice@localhost"
        );
        assert_eq!(bare_jid_of("bob@localhost").unwrap(), "bob@localhost");
    }

    #[test]
    fn bad_jids_say_why() {
        assert_eq!(bare_jid(""), Err(JidError::Empty));
        assert!(matches!(
            bare_jid("example.com"),
            Err(JidError::NoLocalPart(_))
        ));
        assert!(matches!(
            bare_jid("@example.com"),
            Err(JidError::NoLocalPart(_))
        ));
        assert!(matches!(bare_jid("bob@"), Err(JidError::NoDomain(_))));
        assert_eq!(
            bare_jid("a@b@c"),
            Err(JidError::ForbiddenCharacter {
                part: "domain",
                character: '@'
            })
        );
        assert_eq!(
            bare_jid("bo b@example.com"),
            Err(JidError::ForbiddenCharacter {
                part: "local",
                character: ' '
            })
        );
        assert_eq!(
            bare_jid("bob:x@example.com"),
            Err(JidError::ForbiddenCharacter {
                part: "local",
                character: ':'
            })
        );
        let long = format!("{}@example.com", "a".repeat(MAX_PART_BYTES + 1));
        assert_eq!(bare_jid(&long), Err(JidError::TooLong { part: "local" }));
    }
}
