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
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = self.0.list().prefix(prefix.to_string()).limit(1000);
            if let Some(c) = cursor.take() {
                query = query.cursor(c);
            }
            let page = query.execute().await.map_err(err)?;
            names.extend(page.keys.into_iter().map(|k| k.name));
            match page.cursor.filter(|c| !page.list_complete && !c.is_empty()) {
                Some(c) => cursor = Some(c),
                None => return Ok(names),
            }
        }
    }
}
