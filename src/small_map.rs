//! A map for the handful of entries of a per-isolate cache (imported keys, algorithm objects,
//! provider documents): a list searched in order. Its keys come from configuration, never
//! from a client, so it stays small; and it costs far less wasm than a hash map, whose table
//! and hasher are instantiated per key type.

use std::borrow::Borrow;

/// Entries in insertion order; one per key.
pub struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap(Vec::new())
    }
}

impl<K: PartialEq, V> SmallMap<K, V> {
    pub const fn new() -> Self {
        SmallMap(Vec::new())
    }

    pub fn get<Q: PartialEq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.0.iter().find(|(x, _)| x.borrow() == k).map(|(_, v)| v)
    }

    /// Sets `k` to `v`, replacing its value if it has one.
    pub fn insert(&mut self, k: K, v: V) {
        match self.0.iter_mut().find(|(x, _)| *x == k) {
            Some((_, old)) => *old = v,
            None => self.0.push((k, v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_key_the_latest() {
        let mut m: SmallMap<String, i64> = SmallMap::new();
        m.insert("a".into(), 1);
        m.insert("b".into(), 2);
        m.insert("a".into(), 3);
        assert_eq!(m.get("a"), Some(&3));
        assert_eq!(m.get("b"), Some(&2));
        assert_eq!(m.get("c"), None);
        assert_eq!(m.0.len(), 2);
    }
}
