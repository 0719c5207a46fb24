//! Merge-joins over maps sorted by key: [`Walk`] looks keys up in increasing order by
//! walking a map once; [`par_join`] spreads such a walk over every core.
//!
//! Pure helpers over `BTreeMap`s, importing nothing from the plan: the diff pairs
//! declared with live objects through them, and `usernames` walks the live
//! representatives.

use std::collections::{BTreeMap, btree_map};
use std::iter::Peekable;

use rayon::prelude::*;

/// Looks keys up in a sorted map (or a stretch of one) by walking it once: the keys asked
/// must increase.
pub(super) struct Walk<'a, V: 'a, I = btree_map::Iter<'a, String, V>>
where
    I: Iterator<Item = (&'a String, &'a V)>,
{
    entries: Peekable<I>,
    #[cfg(debug_assertions)]
    last: Option<&'a str>,
}

impl<'a, V> Walk<'a, V> {
    pub(super) fn new(map: &'a BTreeMap<String, V>) -> Self {
        Walk::over(map.iter())
    }
}

impl<'a, V: 'a, I: Iterator<Item = (&'a String, &'a V)>> Walk<'a, V, I> {
    /// A walk over sorted entries.
    pub(super) fn over(entries: I) -> Self {
        Walk {
            entries: entries.peekable(),
            #[cfg(debug_assertions)]
            last: None,
        }
    }

    pub(super) fn get(&mut self, key: &'a str) -> Option<&'a V> {
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.last.is_none_or(|l| l < key), "keys out of order");
            self.last = Some(key);
        }
        while self.entries.next_if(|(k, _)| k.as_str() < key).is_some() {}
        self.entries
            .peek()
            .filter(|(k, _)| k.as_str() == key)
            .map(|(_, v)| *v)
    }
}

/// `f(key, left value, right value under the same key)` for every entry of `left`, in
/// `left`'s order, on every core: each chunk of `left` [`Walk`]s its own stretch of
/// `right`.
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
    // Pointer vectors: each chunk finds its stretch of `right` by binary search and walks
    // it as a slice (faster than a B-tree range per chunk).
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
            let mut walk = Walk::over(right[start..].iter().copied());
            part.iter()
                .map(|(key, a)| f(key, a, walk.get(key)))
                .collect()
        })
        .collect();
    parts.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_finds_what_a_search_finds() {
        let map: BTreeMap<String, u32> = ["b", "d", "e", "h"]
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), i as u32))
            .collect();
        let asked = ["a", "b", "c", "d", "f", "h", "z"];
        let mut walk = Walk::new(&map);
        let walked: Vec<Option<&u32>> = asked.iter().map(|k| walk.get(k)).collect();
        let searched: Vec<Option<&u32>> = asked.iter().map(|k| map.get(*k)).collect();
        assert_eq!(walked, searched);
        assert_eq!(
            walked,
            [None, Some(&0), None, Some(&1), None, Some(&3), None]
        );
    }

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
