//! Answers kept in memory until the next write, on the embedded database.
//!
//! On SQLite this process is the database's only writer, and every write
//! takes a turn at the service's [`WriteGate`], which counts a write epoch
//! when the turn begins and again when it ends — after the commit, before
//! the write answers its caller. An answer read while no write held the
//! gate, and stored only if the epoch has not moved since, is the committed
//! truth until the epoch moves again: so a cached answer is never older
//! than an acknowledged write. On PostgreSQL, where other replicas write
//! too, the gate is open and the cache holds nothing.
//!
//! Some answers also change with the clock (an override that expires, a
//! month-ago figure that moves on): each entry can carry the instant it
//! stops being true.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::WriteGate;

/// Proof that a read began while no write held the gate: the epoch it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// Answers by key, valid for one write epoch of `gate`, at most `capacity`
/// of them.
pub struct ReadCache<K, V> {
    gate: WriteGate,
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    /// The epoch every entry was read in.
    epoch: u64,
    entries: HashMap<K, Entry<V>>,
}

struct Entry<V> {
    value: V,
    until: Option<DateTime<Utc>>,
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    /// A cache in front of the database `gate` guards; it holds nothing when
    /// the gate is open (PostgreSQL) or `capacity` is 0.
    pub fn new(gate: WriteGate, capacity: usize) -> Self {
        Self {
            gate,
            capacity,
            inner: Mutex::new(Inner {
                epoch: 0,
                entries: HashMap::new(),
            }),
        }
    }

    fn enabled(&self) -> bool {
        self.capacity > 0 && self.gate.epoch().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        match self.inner.lock() {
            Ok(inner) => inner,
            // A panic while holding the lock left at worst a missing entry.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The answer for `key`, if one was read since the last write and is
    /// still true at `now`.
    pub fn get(&self, key: &K, now: DateTime<Utc>) -> Option<V> {
        let epoch = self.gate.epoch()?;
        if self.capacity == 0 {
            return None;
        }
        let inner = self.lock();
        if inner.epoch != epoch {
            return None;
        }
        let entry = inner.entries.get(key)?;
        entry
            .until
            .is_none_or(|until| now < until)
            .then(|| entry.value.clone())
    }

    /// Taken before reading from the database: `None` when a write holds
    /// the gate (what is read now may be overtaken by its commit) or when
    /// nothing is cached here.
    pub fn ticket(&self) -> Option<Ticket> {
        if !self.enabled() {
            return None;
        }
        self.gate.quiet_epoch().map(Ticket)
    }

    /// Keeps `value` for `key` until the next write (or `until`), if no
    /// write began since `ticket` was taken.
    pub fn fill(&self, ticket: Option<Ticket>, key: K, value: V, until: Option<DateTime<Utc>>) {
        let Some(Ticket(seen)) = ticket else {
            return;
        };
        let mut inner = self.lock();
        // Under the lock, so no fill of an older epoch lands after this check.
        if self.gate.epoch() != Some(seen) {
            return;
        }
        if inner.epoch != seen {
            inner.entries.clear();
            inner.epoch = seen;
        }
        if inner.entries.len() < self.capacity || inner.entries.contains_key(&key) {
            inner.entries.insert(key, Entry { value, until });
        }
    }

    /// How many answers are held (for metrics and tests).
    pub fn len(&self) -> usize {
        let epoch = self.gate.epoch();
        let inner = self.lock();
        if Some(inner.epoch) == epoch {
            inner.entries.len()
        } else {
            0
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Duration;

    use super::*;

    async fn sqlite_gate() -> (tempfile::TempDir, WriteGate) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::connect(&crate::sqlite_url(dir.path(), "cache"))
            .await
            .unwrap();
        (dir, WriteGate::for_db(&pool))
    }

    #[tokio::test]
    async fn an_answer_read_between_writes_is_served_until_the_next_write() {
        let (_dir, gate) = sqlite_gate().await;
        let cache = ReadCache::new(gate.clone(), 10);
        let now = Utc::now();
        let ticket = cache.ticket();
        assert!(ticket.is_some());
        cache.fill(ticket, "a", 1, None);
        assert_eq!(cache.get(&"a", now), Some(1));
        assert_eq!(cache.get(&"b", now), None);
        drop(gate.enter().await);
        assert_eq!(
            cache.get(&"a", now),
            None,
            "a write ended: the answer may be stale"
        );
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_read_overlapping_a_write_is_not_kept() {
        let (_dir, gate) = sqlite_gate().await;
        let cache = ReadCache::new(gate.clone(), 10);
        let now = Utc::now();

        // Begun while a write holds the gate: no ticket.
        let turn = gate.enter().await;
        assert_eq!(cache.ticket(), None);
        drop(turn);

        // Begun before a write that then started (and maybe committed).
        let ticket = cache.ticket();
        let turn = gate.enter().await;
        cache.fill(ticket, "a", 1, None);
        drop(turn);
        assert_eq!(cache.get(&"a", now), None);

        // Begun before a write that is still running when the read ends.
        let ticket = cache.ticket();
        let _turn = gate.enter().await;
        cache.fill(ticket, "a", 2, None);
        assert_eq!(cache.get(&"a", now), None);
    }

    #[tokio::test]
    async fn an_answer_expires_at_its_instant_and_the_capacity_holds() {
        let (_dir, gate) = sqlite_gate().await;
        let cache = ReadCache::new(gate, 2);
        let now = Utc::now();
        let ticket = cache.ticket();
        cache.fill(ticket, "a", 1, Some(now + Duration::seconds(1)));
        cache.fill(ticket, "b", 2, None);
        cache.fill(ticket, "c", 3, None);
        assert_eq!(cache.get(&"a", now), Some(1));
        assert_eq!(cache.get(&"a", now + Duration::seconds(1)), None);
        assert_eq!(cache.get(&"c", now), None, "over capacity: not kept");
        cache.fill(ticket, "b", 4, None);
        assert_eq!(cache.get(&"b", now), Some(4), "a held key is refreshed");
    }

    #[tokio::test]
    async fn an_open_gate_caches_nothing() {
        let cache = ReadCache::new(WriteGate::default(), 10);
        assert_eq!(cache.ticket(), None);
        cache.fill(Some(Ticket(0)), "a", 1, None);
        assert_eq!(cache.get(&"a", Utc::now()), None);
    }
}
