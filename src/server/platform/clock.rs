//! The server's clock. Production reads the system time; tests set it.

use crate::domain::Millis;
use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that only moves when told to.
    pub fn manual(start: Millis) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start))),
        }
    }

    pub fn now(&self) -> Millis {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as Millis)
                .unwrap_or_default(),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Millis) {
        if let Some(t) = &self.manual {
            t.fetch_add(by, Ordering::SeqCst);
        }
    }

    /// Sets a manual clock to `at` (tests only: time going backwards is
    /// never asked of the system clock).
    pub fn set(&self, at: Millis) {
        if let Some(t) = &self.manual {
            t.store(at, Ordering::SeqCst);
        }
    }
}
