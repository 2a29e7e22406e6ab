//! Password hashing with argon2id (OWASP's parameters: 19 MiB, 2 passes, 1 lane; the argon2
//! crate's defaults), stored as PHC strings so the parameters can be raised later and old
//! hashes still verify.

use std::sync::{Condvar, Mutex};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Each argon2id computation takes 19 MiB: at most one per core runs at once, so that a burst
/// of logins queues for a few milliseconds instead of growing the memory by 19 MiB per
/// request (the allocator keeps what it was given).
static BUSY: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

struct Permit;

impl Permit {
    fn enter() -> Self {
        let limit = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let mut busy = BUSY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *busy >= limit {
            busy = FREED.wait(busy).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *busy += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *busy = busy.saturating_sub(1);
        FREED.notify_one();
    }
}

/// Hashes a password; the salt is random.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let _permit = Permit::enter();
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("could not hash password: {e}"))
}

/// Checks a password against a stored PHC string. A malformed hash verifies nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let _permit = Permit::enter();
    PasswordHash::new(phc)
        .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = super::hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify_password("correct horse", &h));
        assert!(!super::verify_password("wrong", &h));
        assert!(!super::verify_password("correct horse", "not a hash"));
    }
}
