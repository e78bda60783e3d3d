//! Cutting texts so a push fits its provider: FCM and APNs both refuse payloads over
//! 4096 bytes, and a chat message has no such limit.

/// The payload limit of FCM (data plus notification) and of APNs (the whole payload).
pub const PROVIDER_PAYLOAD_LIMIT_BYTES: usize = 4096;
/// Room left for what the dispatcher wraps around the texts (keys, `aps`, `android`,
/// `message-count`).
pub const ENVELOPE_RESERVE_BYTES: usize = 512;
/// The longest sender kept, in JSON-escaped bytes; it appears twice in an FCM alert
/// (title and tag) and must leave most of the room to the message.
pub const MAX_SENDER_BYTES: usize = 512;

/// The room left for the message once `sender` is in the payload, in JSON-escaped bytes.
pub fn message_budget(sender: &str) -> usize {
    PROVIDER_PAYLOAD_LIMIT_BYTES - ENVELOPE_RESERVE_BYTES - 2 * json_len(sender)
}

/// The longest prefix of `text`, cut on a character boundary, whose JSON string content
/// takes at most `budget` bytes.
pub fn fit(text: &str, budget: usize) -> &str {
    let mut used = 0;
    for (index, character) in text.char_indices() {
        used += escaped_len(character);
        if used > budget {
            return &text[..index];
        }
    }
    text
}

/// The bytes `text` takes inside a JSON string as serde_json writes it.
pub fn json_len(text: &str) -> usize {
    text.chars().map(escaped_len).sum()
}

/// serde_json escapes `"`, `\` and control characters below U+0020 (`\n`-style when there
/// is a short form, `\u00XX` otherwise) and writes everything else as UTF-8.
fn escaped_len(character: char) -> usize {
    match character {
        '"' | '\\' | '\u{08}' | '\u{0c}' | '\n' | '\r' | '\t' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_matches_serde_json() {
        for text in [
            "plain",
            "quote \" and \\",
            "tab\tnew\nline\u{1}",
            "émoji 😀 עברית",
        ] {
            let written = serde_json::to_string(text).unwrap();
            assert_eq!(json_len(text), written.len() - 2, "{text:?}");
        }
    }

    #[test]
    fn cuts_fall_on_character_boundaries_within_the_budget() {
        let text = "ab😀cd";
        assert_eq!(fit(text, 100), text);
        assert_eq!(fit(text, 2), "ab");
        assert_eq!(fit(text, 5), "ab", "the emoji needs 4 bytes");
        assert_eq!(fit(text, 6), "ab😀");
        assert_eq!(fit("\"\"\"", 5), "\"\"", "escapes count double");
        assert_eq!(fit("", 0), "");
    }

    #[test]
    fn long_senders_still_leave_room() {
        let longest = "a".repeat(MAX_SENDER_BYTES);
        assert_eq!(message_budget(&longest), 2560);
        assert_eq!(message_budget("alice@localhost"), 4096 - 512 - 30);
    }
}
