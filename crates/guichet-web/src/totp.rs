//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), the second
//! factor of agents, compatible with any authenticator application. Secrets are 160 random
//! bits, shown to the agent in base32 (RFC 4648) once, at enrolment.

use hmac::{Hmac, Mac};
use password_hash::rand_core::{OsRng, RngCore};
use sha1::Sha1;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new secret, in base32.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    base32_encode(&bytes)
}

/// RFC 4648 base32 without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (spaces and case ignored); `None` if malformed.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = ALPHABET.iter().position(|a| *a as char == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// The code for a time step.
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else { return 0 };
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let value = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    value % 1_000_000
}

/// Checks a typed code against the secret at `unix_seconds`, accepting the previous and next
/// steps for clock drift.
pub fn verify(secret_b32: &str, code: &str, unix_seconds: u64) -> bool {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let (Some(secret), Ok(typed)) = (base32_decode(secret_b32), code.parse::<u32>()) else {
        return false;
    };
    if code.len() != 6 {
        return false;
    }
    let step = unix_seconds / 30;
    [step.saturating_sub(1), step, step + 1].iter().any(|s| code_at(&secret, *s) == typed)
}

/// The `otpauth://` URI authenticator applications import.
pub fn uri(secret_b32: &str, account: &str, issuer: &str) -> String {
    let enc = |s: &str| crate::pages::url_encode(s).replace('/', "%2F");
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&digits=6&period=30",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_test_vectors_match() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8 digits → last 6 here.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59 / 30), 287_082);
        assert_eq!(code_at(secret, 1_111_111_109 / 30), 81_804);
        assert_eq!(code_at(secret, 1_234_567_890 / 30), 5_924);
        let b32 = base32_encode(secret);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(verify(&b32, "287082", 59));
        assert!(verify(&b32, "287 082", 59 + 30), "the previous step is accepted");
        assert!(!verify(&b32, "287082", 59 + 90));
        assert!(!verify(&b32, "12345", 59));
        assert_eq!(base32_decode(&b32).unwrap(), secret);
    }
}
