//! Fresh prompt ids and session ids, shaped like the real server's.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

/// A canonical hyphenated uuid4, like a server-made prompt id.
pub fn new_prompt_id() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// 32 hex digits without dashes (a uuid4's hex), like a server-made sid.
pub fn new_sid() -> String {
    Uuid::new_v4().simple().to_string()
}

/// Milliseconds since the Unix epoch, for message timestamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_real_shapes() {
        let id = new_prompt_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_prompt_id());
        let sid = new_sid();
        assert_eq!(sid.len(), 32);
        assert!(
            sid.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
