//! The parse cache: each declaration file's typed contents, keyed by a digest of its text.
//!
//! Most plans run on a declaration that changed in one file; parsing and typing the other
//! files again gives the same result. For a file whose per-file stage (read, YAML, schema,
//! typing, login case) found no problem at all, the loader stores what that stage produced
//! — the normalized [`Declaration`], the pointers of its explicit `protect: false` and its
//! sections — under `<state-dir>/cache/parse/<digest>.bin`, and a later run that reads the
//! same text loads that instead of parsing. A file with any diagnostic is never stored, so
//! its problems are always found afresh with exact positions. Everything after the
//! per-file stage (the merge, the cross-file rules, the positions of their findings, which
//! re-read the files) runs over the whole declaration every time.
//!
//! The digest is BLAKE3 over [`FORMAT`], roster's version, the digest of the checked-in
//! JSON Schema and the file's text: an entry written by another build is never found.
//! Each entry also carries a header — magic, format, roster version, schema digest, its
//! own key, the payload's length and BLAKE3 checksum — checked on every read: a truncated,
//! corrupted or foreign entry is ignored (and rewritten by this run), never trusted and
//! never an error. Entries are written to a temporary file and renamed into place, so
//! concurrent runs and a crash leave either a whole entry or none. The payload is
//! MessagePack with field names (`rmp-serde`): self-describing, so the model's
//! `skip_serializing_if` fields read back as their defaults.
//!
//! Declarations hold only references to secrets (`{env: VAR}`, `{file: PATH}`), never
//! values; a declaration holding a resolved value is not stored (belt and braces: the
//! schema already refuses one).
//!
//! Bounded: after a run that wrote entries, the oldest (by last use: a hit refreshes the
//! modification time) are deleted until the directory holds at most [`MAX_BYTES`]. The
//! directory is safe to delete at any time.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::{Declaration, Kind, SecretRef};

/// The entry format; bump it whenever what the per-file stage produces changes meaning
/// (normalization, the model's serde layout) without the schema changing.
pub const FORMAT: u32 = 1;

/// The most bytes of entries kept (512 MiB).
pub const MAX_BYTES: u64 = 512 << 20;

const MAGIC: &[u8; 8] = b"ROSTRPC\0";

/// The directory under the state directory.
pub const SUBDIR: &str = "cache/parse";

/// What the per-file stage produced for a file without any diagnostic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub decl: Declaration,
    /// Pointers of the objects that write `protect: false` explicitly.
    pub unprotect: Vec<String>,
    pub sections: BTreeSet<Kind>,
}

#[derive(Serialize)]
struct EntryRef<'a> {
    decl: &'a Declaration,
    unprotect: &'a [String],
    sections: &'a BTreeSet<Kind>,
}

/// The digest of a file's text (and of everything that decides what parsing it gives).
pub(crate) type Key = [u8; 32];

/// How one load used the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Files loaded from the cache.
    pub hits: usize,
    /// Files parsed (no entry, or one that was not usable).
    pub misses: usize,
    /// Entries found but not usable (truncated, corrupted, from another build).
    pub rejected: usize,
    /// Entries written.
    pub written: usize,
    /// Entries deleted to stay within the size bound.
    pub evicted: usize,
}

/// The parse cache in one directory. Every failure to read or write it is logged at
/// debug level and otherwise ignored: the cache only ever saves time.
#[derive(Debug)]
pub(crate) struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    hits: AtomicUsize,
    misses: AtomicUsize,
    rejected: AtomicUsize,
    written: AtomicUsize,
    evicted: AtomicUsize,
}

fn schema_digest() -> &'static [u8; 32] {
    static D: OnceLock<[u8; 32]> = OnceLock::new();
    D.get_or_init(|| {
        *blake3::hash(include_str!("../../schemas/roster.schema.json").as_bytes()).as_bytes()
    })
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The key of a file's text.
pub(crate) fn key(text: &str) -> Key {
    let mut h = blake3::Hasher::new_derive_key("roster parse cache entry key");
    h.update(&FORMAT.to_le_bytes());
    h.update(&(VERSION.len() as u64).to_le_bytes());
    h.update(VERSION.as_bytes());
    h.update(schema_digest());
    h.update(text.as_bytes());
    *h.finalize().as_bytes()
}

/// Whether any password reference of the declaration carries a resolved value.
fn holds_secret_value(d: &Declaration) -> bool {
    let valued = |p: &Option<Box<SecretRef>>| p.as_ref().is_some_and(|p| p.value.is_some());
    d.managers.iter().any(|m| valued(&m.password))
        || d.representatives.iter().any(|r| valued(&r.password))
}

fn header(key: &Key, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(128 + payload.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&FORMAT.to_le_bytes());
    h.push(VERSION.len() as u8);
    h.extend_from_slice(VERSION.as_bytes());
    h.extend_from_slice(schema_digest());
    h.extend_from_slice(key);
    h.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    h.extend_from_slice(blake3::hash(payload).as_bytes());
    h
}

/// The payload of an entry's bytes, when every header field is this build's and the
/// checksum matches.
fn payload<'a>(key: &Key, bytes: &'a [u8]) -> Option<&'a [u8]> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Option<&'a [u8]> {
        if rest.len() < n {
            return None;
        }
        let (a, b) = rest.split_at(n);
        rest = b;
        Some(a)
    };
    if take(8)? != MAGIC || take(4)? != FORMAT.to_le_bytes() {
        return None;
    }
    let n = usize::from(*take(1)?.first()?);
    if take(n)? != VERSION.as_bytes() || take(32)? != schema_digest() || take(32)? != key {
        return None;
    }
    let len = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let sum = take(32)?;
    let body = take(usize::try_from(len).ok()?)?;
    if !rest.is_empty() || blake3::hash(body).as_bytes() != sum {
        return None;
    }
    Some(body)
}

impl Cache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self::with_bound(dir, MAX_BYTES)
    }

    pub(crate) fn with_bound(dir: PathBuf, max_bytes: u64) -> Self {
        Cache {
            dir,
            max_bytes,
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            written: AtomicUsize::new(0),
            evicted: AtomicUsize::new(0),
        }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.bin", hex::encode(key)))
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// The entry for `key`, if there is a usable one. Counts a hit or a miss.
    pub(crate) fn get(&self, key: &Key) -> Option<Entry> {
        let found = self.read(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn read(&self, key: &Key) -> Option<Entry> {
        let path = self.path(key);
        let mut file = std::fs::File::open(&path).ok()?;
        let mut bytes = Vec::new();
        if let Err(e) = file.read_to_end(&mut bytes) {
            tracing::debug!(path = %path.display(), error = %e, "parse cache: entry unreadable");
            return None;
        }
        let entry = payload(key, &bytes).and_then(|p| rmp_serde::from_slice::<Entry>(p).ok());
        match entry {
            Some(e) => {
                // Last use, for the eviction order.
                let _ = file.set_modified(SystemTime::now());
                Some(e)
            }
            None => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(path = %path.display(), "parse cache: entry ignored (truncated, corrupted or from another build)");
                None
            }
        }
    }

    /// Stores what a file without diagnostics produced. Never fails: a cache that cannot
    /// be written is only slower.
    pub(crate) fn put(
        &self,
        key: &Key,
        decl: &Declaration,
        unprotect: &[String],
        sections: &BTreeSet<Kind>,
    ) {
        if holds_secret_value(decl) {
            return;
        }
        let entry = EntryRef {
            decl,
            unprotect,
            sections,
        };
        let payload = match rmp_serde::encode::to_vec_named(&entry) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "parse cache: entry not encoded");
                return;
            }
        };
        let mut bytes = header(key, &payload);
        bytes.extend_from_slice(&payload);
        match self.write_atomically(&self.path(key), &bytes) {
            Ok(()) => {
                self.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e, "parse cache: entry not written");
            }
        }
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile_in(&self.dir)?;
        let written = tmp.1.write_all(bytes).and_then(|()| tmp.1.flush());
        drop(tmp.1);
        let renamed = written.and_then(|()| std::fs::rename(&tmp.0, path));
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp.0);
        }
        renamed
    }

    /// Deletes the least recently used entries beyond the bound, and temporary files
    /// that a stopped run left behind. Runs after a load that wrote entries.
    pub(crate) fn trim(&self) {
        if self.written.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut entries = Vec::new();
        let mut total = 0u64;
        for e in dir.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            match path.extension().and_then(|x| x.to_str()) {
                Some("bin") => {
                    total += meta.len();
                    entries.push((modified, meta.len(), path));
                }
                Some("tmp")
                    if now.duration_since(modified).unwrap_or_default()
                        > Duration::from_secs(3600) =>
                {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        if total <= self.max_bytes {
            return;
        }
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
            total = total.saturating_sub(len);
        }
    }
}

/// A new temporary file in `dir` (`.<random>.tmp`, created exclusively).
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    loop {
        let name = format!(".{}.tmp", hex::encode(rand::random::<[u8; 12]>()));
        let path = dir.join(name);
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SecretValue, TeamDecl};

    fn all_teams(ts: &[TeamDecl]) -> usize {
        ts.iter().map(|t| 1 + all_teams(&t.teams)).sum()
    }

    const SAMPLE: &str = "\
portals:
  - name: web
    features: [share_my_screen]
teams:
  - name: Europe
    teams:
      - name: Paris
        leader: camille@acme.example
        active: false
representatives:
  - login: camille@acme.example
    email: camille@acme.example
    first_name: Camille
    last_name: Martin
    team: Europe/Paris
    multisession: 2
    support_management: false
    sign_in: { force_password_change: true }
    password: { env: CAMILLE_PASSWORD, rotation: \"2026\" }
    portals: [web]
    features: [share_my_screen]
managers:
  - login: marie@acme.example
    email: marie@acme.example
    name: Marie Curie
    teams: [Europe]
    password: { file: secrets/marie }
";

    fn sample() -> Entry {
        let decl: Declaration = serde_json::from_value(
            crate::config::yaml::parse(SAMPLE)
                .expect("the sample parses")
                .expect("and is not empty"),
        )
        .expect("the sample is a declaration");
        Entry {
            decl,
            unprotect: vec!["/teams/0".into()],
            sections: [
                Kind::Portal,
                Kind::Team,
                Kind::Representative,
                Kind::Manager,
            ]
            .into(),
        }
    }

    fn put(c: &Cache, key: &Key, e: &Entry) {
        c.put(key, &e.decl, &e.unprotect, &e.sections);
    }

    #[test]
    fn an_entry_reads_back_equal_with_every_default_and_non_default_field() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path().join("parse"));
        let e = sample();
        assert_eq!(all_teams(&e.decl.teams), 2);
        let k = key(SAMPLE);
        assert_eq!(c.get(&k), None, "nothing before the first write");
        put(&c, &k, &e);
        assert_eq!(c.get(&k), Some(e));
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 1,
                misses: 1,
                written: 1,
                ..CacheStats::default()
            }
        );
        let other = key(&format!("{SAMPLE}\n"));
        assert_ne!(k, other, "the key follows every byte of the text");
        assert_eq!(c.get(&other), None);
    }

    fn entry_file(dir: &Path) -> PathBuf {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }

    #[test]
    fn truncated_corrupted_and_foreign_entries_are_ignored_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path().to_path_buf());
        let e = sample();
        let k = key(SAMPLE);
        put(&c, &k, &e);
        let path = entry_file(dir.path());
        let good = std::fs::read(&path).unwrap();
        let payload_len = good.len() - header(&k, &[]).len();
        let version_at = 8 + 4 + 1;
        let mut damaged: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("truncated header", good[..20].to_vec()),
            ("truncated payload", good[..good.len() - 5].to_vec()),
            ("trailing bytes", [good.as_slice(), b"x"].concat()),
        ];
        let mut flip = |what: &'static str, at: usize| {
            let mut b = good.clone();
            b[at] ^= 0x01;
            damaged.push((what, b));
        };
        flip("another magic", 0);
        flip("another format", 8);
        flip("another roster version", version_at);
        flip("another schema", version_at + VERSION.len());
        flip("another key", version_at + VERSION.len() + 32);
        flip("a payload bit", good.len() - payload_len / 2);
        flip("the checksum", good.len() - payload_len - 1);
        for (what, bytes) in damaged {
            std::fs::write(&path, &bytes).unwrap();
            let before = c.stats().rejected;
            assert_eq!(c.get(&k), None, "{what}: not trusted");
            assert_eq!(
                c.stats().rejected,
                before + 1,
                "{what}: counted as rejected"
            );
            put(&c, &k, &e);
            assert_eq!(std::fs::read(&path).unwrap(), good, "{what}: rewritten");
            assert_eq!(c.get(&k).as_ref(), Some(&e), "{what}: usable again");
        }
        // A valid entry under another key's name (a renamed file) is not trusted either.
        let k2 = key("teams: []\n");
        std::fs::copy(&path, c.path(&k2)).unwrap();
        assert_eq!(c.get(&k2), None);
    }

    #[test]
    fn concurrent_writers_of_one_entry_leave_a_whole_entry() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path().to_path_buf());
        let e = sample();
        let k = key(SAMPLE);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..25 {
                        put(&c, &k, &e);
                        // A reader between writers sees a whole entry or none.
                        if let Some(got) = c.read(&k) {
                            assert_eq!(got, e);
                        }
                    }
                });
            }
        });
        assert_eq!(c.stats().rejected, 0, "no reader saw a partial entry");
        assert_eq!(c.get(&k), Some(e));
        // No temporary file is left behind.
        entry_file(dir.path());
    }

    #[test]
    fn a_declaration_holding_a_secret_value_is_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path().to_path_buf());
        let mut e = sample();
        e.decl.representatives[0].password.as_mut().unwrap().value =
            Some(SecretValue("hunter2-value".into()));
        put(&c, &key(SAMPLE), &e);
        assert_eq!(c.stats().written, 0);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn the_least_recently_used_entries_go_beyond_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let e = sample();
        let one = {
            let c = Cache::new(dir.path().to_path_buf());
            put(&c, &key("a"), &e);
            std::fs::metadata(c.path(&key("a"))).unwrap().len()
        };
        // Room for three entries.
        let c = Cache::with_bound(dir.path().to_path_buf(), one * 3 + one / 2);
        let old = SystemTime::now() - Duration::from_secs(600);
        for (i, name) in ["b", "c", "d"].iter().enumerate() {
            put(&c, &key(name), &e);
            let f = std::fs::File::options()
                .write(true)
                .open(c.path(&key(name)))
                .unwrap();
            f.set_modified(old + Duration::from_secs(i as u64)).unwrap();
        }
        // "a" was written first, then used last: a hit refreshes it, so "b" is now the
        // least recently used.
        std::fs::File::options()
            .write(true)
            .open(c.path(&key("a")))
            .unwrap()
            .set_modified(old - Duration::from_secs(100))
            .unwrap();
        assert!(c.read(&key("a")).is_some());
        let stale_tmp = dir.path().join(".left-behind.tmp");
        std::fs::write(&stale_tmp, b"partial").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stale_tmp)
            .unwrap()
            .set_modified(old - Duration::from_secs(7200))
            .unwrap();
        c.trim();
        assert_eq!(c.stats().evicted, 1);
        assert!(!c.path(&key("b")).exists(), "the least recently used goes");
        for name in ["a", "c", "d"] {
            assert!(c.path(&key(name)).exists(), "{name} stays");
        }
        assert!(!stale_tmp.exists(), "an old temporary file goes");
    }
}
