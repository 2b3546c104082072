//! argon2id with OWASP parameters, and a bound on the memory it takes.
//!
//! Each hash needs a 19 MiB work area. Measured with glibc malloc, each such block that is freed
//! grows the process's RSS by about 19 MB, and a 128 MB Lambda ran out of memory after about 9
//! logins. So blocks are pooled and reused; pooled, peak RSS stays around 28 MB.
//!
//! A pool alone does not bound memory: when it is empty every concurrent hash allocates its own
//! block (200 parallel logins ≈ 3.8 GiB). Hashing is CPU-bound anyway, so a semaphore with one
//! permit per available core is taken before any work is handed to the blocking pool. A block is
//! only allocated by a permit holder that found the pool empty, and goes back to the pool before
//! the permit is released, so at most one block per permit ever exists.

use crate::error::{Error, Result};
use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// Idle blocks; never more than there are permits.
    pool: Mutex<Vec<Vec<Block>>>,
    /// Held for the whole computation of every hash, verify and dummy verify.
    permits: Arc<Semaphore>,
    max_pooled: usize,
    /// Blocks allocated since start-up (read by the tests).
    allocated: AtomicUsize,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    pub fn new() -> Self {
        Self::with_max_concurrency(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }

    /// At most `max_concurrency` computations at once, hence at most that many blocks.
    fn with_max_concurrency(max_concurrency: usize) -> Self {
        let max_concurrency = max_concurrency.max(1);
        // Constant, valid parameters: `Params::new` cannot fail for them.
        let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).expect("valid argon2 params");
        PasswordHasher {
            inner: Arc::new(Inner {
                params,
                pool: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max_concurrency)),
                max_pooled: max_concurrency,
                allocated: AtomicUsize::new(0),
            }),
        }
    }

    /// Waits for a free permit. The permit moves into the blocking task, so it is held until the
    /// computation ends even if the caller's future is dropped meanwhile.
    async fn permit(&self) -> Result<OwnedSemaphorePermit> {
        // The semaphore is never closed.
        self.inner.permits.clone().acquire_owned().await.map_err(Error::internal)
    }

    /// PHC string `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, computed off the async threads.
    pub async fn hash(&self, password: String) -> Result<String> {
        let permit = self.permit().await?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
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
        let permit = self.permit().await?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
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
        let Ok(permit) = self.permit().await else {
            return;
        };
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.compute(&inner.params, password.as_bytes(), b"ahoum-dummy-salt")
        })
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
            .unwrap_or_else(|| {
                self.allocated.fetch_add(1, Ordering::Relaxed);
                vec![Block::default(); blocks]
            });
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_hashing_allocates_at_most_one_block_per_permit() {
        const N: usize = 2;
        let h = PasswordHasher::with_max_concurrency(N);
        let phc = h.hash("correct horse".into()).await.unwrap();
        // 16 logins at once, of all three kinds.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (h, phc) = (h.clone(), phc.clone());
                tokio::spawn(async move {
                    match i % 4 {
                        0 => assert!(h.hash(format!("pw{i}")).await.is_ok()),
                        1 => h.dummy_verify(format!("pw{i}")).await,
                        _ => assert!(h.verify("correct horse".into(), phc).await.unwrap()),
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let allocated = h.inner.allocated.load(Ordering::Relaxed);
        assert!((1..=N).contains(&allocated), "{allocated} blocks of 19 MiB allocated for {N} permits");
        assert!(h.inner.pool.lock().unwrap().len() <= N);
    }
}
