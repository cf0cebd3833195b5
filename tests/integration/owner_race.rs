//! The deadlock behind the SSR stall (issue 2): a thread reading context
//! through a chain of owners while another thread drops those owners. On
//! reactive_graph 0.2.16 as published, the reader could end up holding the
//! last reference to a parent and drop it while still locking its own
//! owner; the parent's cleanup then locked that owner and the thread hung
//! for good (a Tokio worker mid-render, in the server). Gatehouse builds
//! with the patched copy in vendor/reactive_graph. Unpatched, this test
//! hangs within seconds (20,000 rounds: 3 runs of 3 hung); patched, it
//! finishes in about 2 seconds.

use leptos::prelude::{provide_context, use_context, Owner};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

#[test]
fn context_lookups_survive_owners_dropped_by_another_thread() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (drop_tx, drop_rx) = mpsc::channel::<Vec<Owner>>();
        let barrier = Arc::new(Barrier::new(2));
        let dropper_barrier = barrier.clone();
        std::thread::spawn(move || {
            while let Ok(owners) = drop_rx.recv() {
                dropper_barrier.wait();
                // Nearest the reader first, racing its walk up the chain.
                for owner in owners.into_iter().rev() {
                    drop(owner);
                }
                dropper_barrier.wait();
            }
        });
        let mut found = 0;
        for _ in 0..20_000 {
            let root = Owner::new();
            root.with(|| provide_context(42u32));
            let mut chain = vec![root.child()];
            for _ in 0..64 {
                let next = chain.last().unwrap().child();
                chain.push(next);
            }
            let leaf = chain.last().unwrap().child();
            drop_tx.send(chain).unwrap();
            barrier.wait();
            found += usize::from(leaf.with(use_context::<u32>) == Some(42));
            barrier.wait();
            drop(leaf);
            drop(root);
        }
        done_tx.send(found).unwrap();
    });
    let found = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a thread hung in Owner::with_context: the reactive_graph patch is missing");
    assert!(found > 0, "the lookups reached the root's context at least sometimes");
}
