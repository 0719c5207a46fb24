//! [`SortedSet`]: a set kept as a sorted vector, for the small sets every object of a
//! large organisation carries (a representative's portals).
//!
//! A `BTreeSet` allocates a whole node (room for eleven elements, 280 bytes for
//! strings) for its first element; a representative holds one or two portals, and a plan
//! holds 100,000 representatives twice (declared and live). This set allocates exactly
//! its elements. It reads, writes, compares and is described (JSON Schema: an array of
//! unique items) as a `BTreeSet` is, so the YAML, the API and the plan do not change;
//! lookups are a binary search, inserts a shift (fine for a handful of elements).

use std::borrow::Borrow;
use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// A set as a sorted vector without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SortedSet<T: Ord>(Vec<T>);

impl<T: Ord> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet(Vec::new())
    }
}

impl<T: Ord> SortedSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    pub fn contains<Q: Ord + ?Sized>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.0.binary_search_by(|x| x.borrow().cmp(value)).is_ok()
    }

    /// Adds `value`; false when it was there already.
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, value);
                true
            }
        }
    }

    /// Removes `value`; false when it was not there.
    pub fn remove<Q: Ord + ?Sized>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        match self.0.binary_search_by(|x| x.borrow().cmp(value)) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Replaces `old` by `new` when `old` is there; false when it was not.
    pub fn replace<Q: Ord + ?Sized>(&mut self, old: &Q, new: T) -> bool
    where
        T: Borrow<Q>,
    {
        let found = self.remove(old);
        if found {
            self.insert(new);
        }
        found
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.0.retain(keep);
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v: Vec<T> = iter.into_iter().collect();
        v.sort();
        v.dedup();
        v.shrink_to_fit();
        SortedSet(v)
    }
}

impl<T: Ord> Extend<T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.insert(x);
        }
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for SortedSet<T> {
    fn from(a: [T; N]) -> Self {
        a.into_iter().collect()
    }
}

impl<T: Ord> From<BTreeSet<T>> for SortedSet<T> {
    fn from(s: BTreeSet<T>) -> Self {
        SortedSet(s.into_iter().collect())
    }
}

impl<T: Ord> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T: Ord> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de, T: Ord + Deserialize<'de>> Deserialize<'de> for SortedSet<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d).map(|v| v.into_iter().collect())
    }
}

impl<T: Ord + JsonSchema> JsonSchema for SortedSet<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        BTreeSet::<T>::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        BTreeSet::<T>::schema_id()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        BTreeSet::<T>::json_schema(g)
    }

    fn inline_schema() -> bool {
        BTreeSet::<T>::inline_schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_keeps_its_elements_sorted_and_unique_like_a_btreeset() {
        let mut s: SortedSet<String> = ["b", "a", "b"].map(String::from).into();
        assert_eq!(s.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(s.contains("a") && !s.contains("c"));
        assert!(s.insert("c".into()) && !s.insert("a".into()));
        assert!(s.remove("b") && !s.remove("b"));
        assert_eq!(s.len(), 2);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["a","c"]"#);
        let back: SortedSet<String> = serde_json::from_str(r#"["c","a","c"]"#).unwrap();
        assert_eq!(back, s, "read as a set: sorted, duplicates dropped");
        let tree: BTreeSet<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(SortedSet::from(tree), s);
        assert_eq!(
            serde_json::to_value(schemars::schema_for!(SortedSet<String>)).unwrap(),
            serde_json::to_value(schemars::schema_for!(BTreeSet<String>)).unwrap(),
            "described as a BTreeSet is"
        );
    }

    #[test]
    fn one_element_allocates_one_slot_not_a_node() {
        let s: SortedSet<String> = ["web".to_string()].into();
        assert_eq!(s.0.capacity(), 1);
    }
}
