//! A merge-join of two maps sorted by key, spread over every core.

use std::collections::BTreeMap;

use rayon::prelude::*;

/// `f(key, left value, right value under the same key)` for every entry of `left`, in
/// `left`'s order, on every core: each chunk of `left` walks its own stretch of `right`.
/// For the comparisons that make up most of a large no-op plan and run once everything
/// else is done, when one core would otherwise idle.
pub(super) fn par_join<A, B, R>(
    left: &BTreeMap<String, A>,
    right: &BTreeMap<String, B>,
    f: impl Fn(&String, &A, Option<&B>) -> R + Sync,
) -> Vec<R>
where
    A: Sync,
    B: Sync,
    R: Send,
{
    let left: Vec<(&String, &A)> = left.iter().collect();
    let right: Vec<(&String, &B)> = right.iter().collect();
    let chunk = left
        .len()
        .div_ceil(rayon::current_num_threads() * 4)
        .max(1024);
    let parts: Vec<Vec<R>> = left
        .par_chunks(chunk)
        .map(|part| {
            let start = right.partition_point(|(k, _)| *k < part[0].0);
            let mut walk = right[start..].iter().peekable();
            part.iter()
                .map(|(key, a)| {
                    while walk.next_if(|(k, _)| k < key).is_some() {}
                    let b = walk.peek().filter(|(k, _)| k == key).map(|(_, b)| *b);
                    f(key, a, b)
                })
                .collect()
        })
        .collect();
    parts.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_every_left_entry_with_its_right_namesake_in_order() {
        let left: BTreeMap<String, usize> = (0..5000).map(|i| (format!("k{i:05}"), i)).collect();
        let right: BTreeMap<String, usize> = (0..5000)
            .filter(|i| i % 3 == 0)
            .map(|i| (format!("k{i:05}"), i * 10))
            .collect();
        let got = par_join(&left, &right, |k, a, b| (k.clone(), *a, b.copied()));
        assert_eq!(got.len(), 5000);
        for (i, (k, a, b)) in got.into_iter().enumerate() {
            assert_eq!((k, a), (format!("k{i:05}"), i));
            assert_eq!(b, (i % 3 == 0).then_some(i * 10));
        }
        assert!(par_join(&BTreeMap::<String, u8>::new(), &right, |_, _, _| ()).is_empty());
    }
}
