//! Wakes waiters in this process the moment a lock here is released, instead of at their next
//! poll. Waiters in other processes still find out by polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::Notify;

use crate::lock::item::LockId;

type Registry = Mutex<HashMap<(String, LockId), Weak<Notify>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The notifier waiters of `(table, id)` listen on. Kept alive by the waiters that hold it.
pub fn subscribe(table: &str, id: &LockId) -> Arc<Notify> {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    let key = (table.to_owned(), id.clone());
    if let Some(existing) = map.get(&key).and_then(Weak::upgrade) {
        return existing;
    }
    // Forget entries whose waiters are all gone, so the map stays as small as the live waits.
    map.retain(|_, weak| weak.strong_count() > 0);
    let notify = Arc::new(Notify::new());
    map.insert(key, Arc::downgrade(&notify));
    notify
}

/// Tells this process's waiters for `(table, id)` that it was just released.
pub fn released(table: &str, id: &LockId) {
    let map = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(notify) = map.get(&(table.to_owned(), id.clone())).and_then(Weak::upgrade) {
        notify.notify_waiters();
    }
}
