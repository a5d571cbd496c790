//! [`Kv`] over a Workers KV namespace.

use crate::platform::{Kv, StoreError};

pub struct WorkerKv(pub worker::kv::KvStore);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("KV: {e}"))
}

impl Kv for WorkerKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.0.get(key).text().await.map_err(err)
    }

    async fn put(&self, key: &str, value: &str, ttl: u64) -> Result<(), StoreError> {
        self.0
            .put(key, value)
            .map_err(err)?
            .expiration_ttl(ttl.max(60))
            .execute()
            .await
            .map_err(err)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).await.map_err(err)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let resp = self
            .0
            .list()
            .prefix(prefix.to_string())
            .limit(1000)
            .execute()
            .await
            .map_err(err)?;
        Ok(resp.keys.into_iter().map(|k| k.name).collect())
    }
}
