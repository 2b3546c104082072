//! argon2id with OWASP parameters. The 19 MiB work area is pooled and reused: allocating it per
//! hash makes glibc's heap grow by ~19 MB per login (see MEASURED.md) until a 128 MB Lambda dies.

use crate::error::{Error, Result};
use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use std::sync::{Arc, Mutex};

pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    pool: Mutex<Vec<Vec<Block>>>,
    max_pooled: usize,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    pub fn new() -> Self {
        // Constant, valid parameters: `Params::new` cannot fail for them.
        let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).expect("valid argon2 params");
        let max_pooled = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        PasswordHasher { inner: Arc::new(Inner { params, pool: Mutex::new(Vec::new()), max_pooled }) }
    }

    /// PHC string `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, computed off the async threads.
    pub async fn hash(&self, password: String) -> Result<String> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
            let out = inner.compute(&inner.params, password.as_bytes(), &salt)?;
            let p = &inner.params;
            Ok(format!(
                "$argon2id$v=19$m={},t={},p={}${}${}",
                p.m_cost(),
                p.t_cost(),
                p.p_cost(),
                STANDARD_NO_PAD.encode(salt),
                STANDARD_NO_PAD.encode(out)
            ))
        })
        .await
        .map_err(Error::internal)?
    }

    /// Constant-time comparison against a stored PHC string; honours the parameters stored in it.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&phc).map_err(Error::internal)?;
            if parsed.algorithm.as_str() != "argon2id" {
                return Err(Error::internal("stored hash is not argon2id"));
            }
            let params = Params::try_from(&parsed).map_err(Error::internal)?;
            let expected = parsed.hash.ok_or_else(|| Error::internal("stored hash has no output"))?;
            let salt = parsed.salt.ok_or_else(|| Error::internal("stored hash has no salt"))?;
            let mut salt_bytes = [0u8; 64];
            let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(Error::internal)?;
            let params = Params::new(params.m_cost(), params.t_cost(), params.p_cost(), Some(expected.len()))
                .map_err(Error::internal)?;
            let out = inner.compute(&params, password.as_bytes(), salt_raw)?;
            let computed = argon2::password_hash::Output::new(&out).map_err(Error::internal)?;
            // `Output`'s equality is constant-time.
            Ok(computed == expected)
        })
        .await
        .map_err(Error::internal)?
    }

    /// Spends the same work as a real verification, for logins with an unknown email, so the
    /// response time does not reveal whether an account exists.
    pub async fn dummy_verify(&self, password: String) {
        let inner = self.inner.clone();
        let _ =
            tokio::task::spawn_blocking(move || inner.compute(&inner.params, password.as_bytes(), b"ahoum-dummy-salt"))
                .await;
    }
}

impl Inner {
    fn compute(&self, params: &Params, password: &[u8], salt: &[u8]) -> Result<Vec<u8>> {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let blocks = params.block_count();
        let mut memory = self
            .pool
            .lock()
            .map_err(|_| Error::internal("password pool poisoned"))?
            .pop()
            .filter(|m| m.len() == blocks)
            .unwrap_or_else(|| vec![Block::default(); blocks]);
        let mut out = vec![0u8; params.output_len().unwrap_or(OUTPUT_LEN)];
        let result = argon.hash_password_into_with_memory(password, salt, &mut out, &mut memory);
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < self.max_pooled && blocks == self.params.block_count() {
                pool.push(memory);
            }
        }
        result.map_err(Error::internal)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_is_argon2id_with_owasp_params_and_verifies() {
        let h = PasswordHasher::new();
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify("correct horse".into(), phc.clone()).await.unwrap());
        assert!(!h.verify("correct horsE".into(), phc.clone()).await.unwrap());
        // An independent implementation (argon2's own PHC verifier) agrees.
        use argon2::PasswordVerifier;
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert_ne!(phc, h.hash("correct horse".into()).await.unwrap(), "salt must be random");
    }
}
