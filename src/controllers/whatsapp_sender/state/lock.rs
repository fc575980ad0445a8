//! The index's one lock, timed: how often it is taken, how long callers wait for it and how
//! long it is held (`senderops_state_lock_*`), the numbers behind one lock rather than one per
//! account (see the module above).

use std::sync::MutexGuard;

use prometheus_client::metrics::counter::Counter;

use super::{Index, State};

/// The index, locked; records how long it was held when dropped.
pub(super) struct Locked<'a> {
    guard: MutexGuard<'a, Index>,
    since: std::time::Instant,
    held: &'a Counter<f64, std::sync::atomic::AtomicU64>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Index;
    fn deref(&self) -> &Index {
        &self.guard
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Index {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.held.inc_by(self.since.elapsed().as_secs_f64());
    }
}

impl State {
    pub(super) fn lock(&self) -> Locked<'_> {
        let asked = std::time::Instant::now();
        let guard = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let since = std::time::Instant::now();
        let counters = &self.lock_counters;
        counters.acquired.inc();
        counters.waited.inc_by((since - asked).as_secs_f64());
        Locked {
            guard,
            since,
            held: &counters.held,
        }
    }
}
