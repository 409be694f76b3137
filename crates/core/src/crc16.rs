//! CRC16 and Redis Cluster hash slots.
//!
//! Redis Cluster maps every key to one of [`SLOT_COUNT`] slots with
//! `CRC16(key) mod 16384`, where CRC16 is the CCITT/XMODEM variant
//! (polynomial `0x1021`, initial value `0`, no reflection, no final XOR).
//! When a key contains a *hash tag* — the bytes between the first `{` and
//! the first `}` after it, if that span is non-empty — only the tag is hashed,
//! so that related keys such as `{user1000}.following` and
//! `{user1000}.followers` land in the same slot.

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// Generator polynomial of CRC16-CCITT (XMODEM).
const POLY: u16 = 0x1021;

/// Lookup table indexed by the high byte of the running CRC xor the next
/// input byte, computed at compile time from [`POLY`].
static TABLE: [u16; 256] = build_table();

const fn build_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// Computes CRC16-CCITT (XMODEM) of `data`, the checksum Redis Cluster uses
/// for key hashing (`crc16(b"123456789") == 0x31C3`).
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// Returns the part of `key` that Redis Cluster hashes: the content of the
/// first `{...}` hash tag when it is non-empty, otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.iter().position(|&b| b == b'}') {
            if close > 0 {
                return &rest[..close];
            }
        }
    }
    key
}

/// Returns the Redis Cluster hash slot (`0..16384`) of `key`, honouring
/// hash tags exactly as Redis's `keyHashSlot` does.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOT_COUNT - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit-by-bit CRC16/XMODEM, used to validate the table.
    fn crc16_bitwise(data: &[u8]) -> u16 {
        let mut crc: u16 = 0;
        for &b in data {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ POLY
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn known_slots() {
        // Values verified with CLUSTER KEYSLOT on a real Redis.
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(key_hash_slot(b"bar"), 5061);
        assert_eq!(key_hash_slot(b"hello"), 866);
        assert_eq!(key_hash_slot(b""), 0);
        assert_eq!(key_hash_slot(b"somekey"), 11058);
        assert_eq!(key_hash_slot(b"{user1000}.following"), 3443);
        assert_eq!(
            key_hash_slot(b"{user1000}.following"),
            key_hash_slot(b"{user1000}.followers")
        );
        assert_eq!(
            key_hash_slot(b"{user1000}.following"),
            key_hash_slot(b"user1000")
        );
    }

    #[test]
    fn hash_tag_rules() {
        // Empty tag: the whole key is hashed.
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(key_hash_slot(b"foo{}{bar}"), 8363);
        // First '{' then the first '}' after it.
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(key_hash_slot(b"foo{{bar}}zap"), 4015);
        assert_eq!(key_hash_slot(b"{bar"), 4015);
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(key_hash_slot(b"foo{bar}{zap}"), 5061);
        assert_eq!(key_hash_slot(b"}{x}"), 16287);
        // No closing brace, or no opening brace.
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar");
        assert_eq!(hash_tag(b"foo}bar{"), b"foo}bar{");
        assert_eq!(hash_tag(b"}{x}"), b"x");
        assert_eq!(hash_tag(b"{"), b"{");
        assert_eq!(hash_tag(b"{}"), b"{}");
    }

    proptest! {
        #[test]
        fn table_matches_bitwise(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(crc16(&data), crc16_bitwise(&data));
            prop_assert!(key_hash_slot(&data) < SLOT_COUNT);
        }
    }
}
