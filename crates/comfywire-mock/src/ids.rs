//! Fresh prompt ids and session ids, shaped like the real server's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 128 bits that differ on every call; uniqueness matters here, secrecy does not.
fn random_u128() -> u128 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = splitmix(nanos ^ splitmix(count));
    let lo = splitmix(hi ^ count.rotate_left(17) ^ u64::from(std::process::id()));
    (u128::from(hi) << 64) | u128::from(lo)
}

/// A uuid4 with version and variant bits set, as 32 lower-case hex digits.
fn uuid4_hex() -> String {
    let mut bits = random_u128();
    bits &= !(0xf << 76);
    bits |= 0x4 << 76;
    bits &= !(0x3 << 62);
    bits |= 0x2 << 62;
    format!("{bits:032x}")
}

/// A canonical hyphenated uuid4, like a server-made prompt id.
pub fn new_prompt_id() -> String {
    let hex = uuid4_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// 32 hex digits without dashes, like a server-made sid.
pub fn new_sid() -> String {
    uuid4_hex()
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
