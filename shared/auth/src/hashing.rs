//! argon2id hashing and verification in working memory the caller lends.
//!
//! Each hash needs 19 MiB of working memory. Allocated per hash, as `argon2`'s own
//! `PasswordHasher` does, that memory was measured to stay with the process: the allocator
//! keeps the freed, 64-byte-aligned 19 MiB chunks and seldom fits the next one into them,
//! so resident memory grew by 15 to 19 MiB with every hash, a flood of 2,000 logins
//! reaching 12 GiB (docs/hardening.md). Here each [`HashGate`](crate::HashGate) slot owns one
//! buffer, reused by every hash that holds the slot: hashing memory is at most slots × 19 MiB
//! and allocated once.

use archlab_kernel::{Error, Result};
use argon2::password_hash::{self, Decimal, Ident, Output, ParamsString, Salt, SaltString};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
use std::sync::LazyLock;

/// The working memory of one hash: argon2 blocks of 1 KiB, grown to what the parameters need.
pub type Memory = Vec<Block>;

/// argon2id with OWASP's minimum: m = 19 MiB, t = 2, p = 1.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params")
}

/// A real hash of a throwaway password, verified against when the email is unknown so that
/// "no such user" and "wrong password" take the same time.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16-byte salt");
    let mut memory = Memory::new();
    InMemory::new(&mut memory).hash_password(b"decoy-password", &salt).expect("hashing a constant").to_string()
});

/// Hash `password` with a fresh salt, as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub(crate) fn hash(memory: &mut Memory, password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(Error::internal)?;
    InMemory::new(memory).hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(Error::internal)
}

/// Whether `password` matches `stored` (a PHC string); `None` checks against the decoy, so
/// an unknown account costs the same time as a known one.
pub(crate) fn verify(memory: &mut Memory, stored: Option<&str>, password: &str) -> bool {
    let stored = stored.unwrap_or(&DECOY_HASH);
    PasswordHash::new(stored).is_ok_and(|h| InMemory::new(memory).verify_password(password.as_bytes(), &h).is_ok())
}

/// argon2 computed in a lent buffer. `PasswordVerifier` comes with `PasswordHasher`, and
/// verification re-hashes with the stored hash's own algorithm, version and parameters.
struct InMemory<'m> {
    memory: RefCell<&'m mut Memory>,
}

impl<'m> InMemory<'m> {
    fn new(memory: &'m mut Memory) -> Self {
        Self { memory: RefCell::new(memory) }
    }
}

impl PasswordHasher for InMemory<'_> {
    type Params = Params;

    fn hash_password<'a>(&self, password: &[u8], salt: impl Into<Salt<'a>>) -> password_hash::Result<PasswordHash<'a>> {
        self.hash_password_customized(password, None, None, params(), salt)
    }

    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm.map(Algorithm::try_from).transpose()?.unwrap_or(Algorithm::Argon2id);
        let version = version.map(Version::try_from).transpose()?.unwrap_or(Version::V0x13);
        let salt = salt.into();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let mut memory = self.memory.borrow_mut();
        // Every block is written before it is read, so a reused buffer needs no clearing.
        memory.resize(params.block_count(), Block::default());
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = Output::init_with(output_len, |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut memory[..])?)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_with_its_password_only_and_reads_like_argon2s_own() {
        let mut memory = Memory::new();
        let stored = hash(&mut memory, "correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify(&mut memory, Some(&stored), "correct horse"));
        assert!(!verify(&mut memory, Some(&stored), "correct horsE"));
        assert!(!verify(&mut memory, None, "correct horse"), "the decoy matches nothing a user sends");
        assert!(!verify(&mut memory, Some("not a hash"), "correct horse"));
        assert_eq!(memory.len(), 19 * 1024, "one buffer of 19 MiB, reused");

        // Interchangeable with the argon2 crate's own hashing, both ways: stored hashes
        // from before keep working, and new ones read the same.
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"correct horse", &SaltString::encode_b64(b"sixteen byte slt").unwrap())
            .unwrap()
            .to_string();
        assert!(verify(&mut memory, Some(&theirs), "correct horse"));
        let ours = PasswordHash::new(&stored).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &ours).is_ok());
    }
}
