//! An ordered parallel map: work on the rayon pool, results consumed on the calling
//! thread in input order as soon as each is in. The loader parses files with it while
//! it merges the finished ones, so the sequential merge overlaps the parallel parsing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Calls `work` on every item on the rayon pool and `sink` on this thread with each
/// result, in item order.
///
/// Each worker takes the next item in order (not a fixed half of the list, as
/// `par_iter` would split it): results then arrive about in order and `sink` keeps pace
/// instead of finding the second half waiting for it at the end.
pub(crate) fn ordered_map<T, R>(items: &[T], work: impl Fn(&T) -> R + Sync, mut sink: impl FnMut(R))
where
    T: Sync,
    R: Send,
{
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, R)>();
        let work = &work;
        scope.spawn(move || {
            let next = AtomicUsize::new(0);
            let next = &next;
            let workers = rayon::current_num_threads().min(items.len()).max(1);
            rayon::scope(|pool| {
                for _ in 0..workers {
                    let tx = tx.clone();
                    pool.spawn(move |_| {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(item) = items.get(i) else { break };
                            // The receiver lives until every result is in; a send cannot
                            // fail unless this scope is already unwinding.
                            let _ = tx.send((i, work(item)));
                        }
                    });
                }
            });
            drop(tx);
        });
        let mut waiting: BTreeMap<usize, R> = BTreeMap::new();
        let mut next = 0;
        for (i, r) in rx {
            waiting.insert(i, r);
            while let Some(r) = waiting.remove(&next) {
                next += 1;
                sink(r);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_in_input_order_whatever_order_they_finish_in() {
        let items: Vec<u64> = (0..200).collect();
        let mut seen = Vec::new();
        super::ordered_map(
            &items,
            |&i| {
                // Early items finish last.
                std::thread::sleep(std::time::Duration::from_micros((200 - i) * 20));
                i * 2
            },
            |r| seen.push(r),
        );
        assert_eq!(seen, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
