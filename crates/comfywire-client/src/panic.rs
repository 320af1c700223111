//! What a caught panic says, for the layers that catch them (the host's
//! callback dispatcher, the C binding's panic boundary).

use std::any::Any;

/// The message of a caught panic's payload (`catch_unwind`'s `Err`, or
/// `JoinError::into_panic`): the text given to `panic!`, or
/// `"unknown panic"` when the payload is not a string.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_str_and_string_payloads() {
        let caught = |f: fn()| {
            std::panic::catch_unwind(f)
                .err()
                .map(|p| panic_message(&*p))
        };
        assert_eq!(caught(|| panic!("plain")).as_deref(), Some("plain"));
        assert_eq!(
            caught(|| panic!("formatted {}", 1)).as_deref(),
            Some("formatted 1")
        );
        assert_eq!(
            caught(|| std::panic::panic_any(7u8)).as_deref(),
            Some("unknown panic")
        );
        assert_eq!(caught(|| {}), None);
    }
}
