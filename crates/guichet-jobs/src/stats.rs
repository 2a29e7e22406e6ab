//! Counters of jobs run by this process, for `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Jobs processed by this process, by kind and outcome ("done", "retry", "failed").
#[derive(Debug, Default)]
pub struct JobStats {
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl JobStats {
    /// Counts one processed job.
    pub fn record(&self, kind: &str, outcome: &'static str) {
        // A poisoned lock only means another thread panicked mid-increment; counters stay usable.
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry((kind.to_owned(), outcome)).or_default() += 1;
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> Vec<(String, &'static str, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.iter().map(|((k, o), n)| (k.clone(), *o, *n)).collect()
    }
}
