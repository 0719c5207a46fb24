//! The live snapshot: the last [`Observed`] read from an endpoint, kept between runs and
//! brought up to date from the live change feed (`GET /v1/changes`) instead of reading
//! every object again.
//!
//! One file per endpoint and token (`<state-dir>/cache/live/<digest>.bin`, the digest
//! BLAKE3 over the endpoint's name and the token, so a manager's snapshot, which sees
//! less, is never an administrator's). A read with a snapshot asks for the changes since
//! the snapshot's cursor, whose last page also says who the token acts as and what the
//! account is: one request when nothing changed (three with a server whose feed answers
//! neither: then `whoami` and the account are asked after it). Each changed key comes
//! with its object as it is now (or `null`: gone), which replaces the snapshot's. The
//! result is then checked against the feed's digest (per kind, how many objects and the sum of their versions): anything doubtful
//! — another principal, a cursor the server no longer reaches (`410`), a digest that
//! does not match, more changes than a full read costs, a server without the feed —
//! falls back to the full paged read (`read.rs`), which writes a fresh snapshot.
//!
//! A full read takes the feed's head *before* it starts listing: whatever is written
//! while the pages are read is reported again by the next feed read, and replacing an
//! object by its current state twice is harmless.
//!
//! The file holds what the API showed (no secret: the API never answers a password or
//! its hash), behind a header (magic, format, roster's version, length, BLAKE3
//! checksum) checked on every read; a bad or foreign file is ignored and rewritten,
//! never trusted. It is written to a temporary file and renamed into place. Manager
//! tokens are not answered by the feed (403): their reads stay full.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::read::{self, LiveItem};
use super::{HttpProvider, ProviderError, encode_key};
use crate::model::{
    Account, Administrator, Campaign, ContactGroup, Kind, KindDigest, Manager, ObjectId, Observed,
    Portal, Principal, Representative, Team,
};

/// The capability `GET /v1/whoami` lists for the change feed.
pub const CHANGE_FEED: &str = "change-feed";

/// The directory under the state directory.
pub const SUBDIR: &str = "cache/live";

const MAGIC: &[u8; 8] = b"ROSTRLS\0";
/// Bump when what a snapshot holds changes meaning.
const FORMAT: u32 = 1;
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Most snapshot files kept (one per endpoint and token): beyond, the least recently
/// written go.
const MAX_FILES: usize = 16;

/// Feed pages (of up to 1,000 keys) read before a full read is the cheaper way.
const MAX_FEED_PAGES: usize = 20;

/// Where a provider keeps its snapshot, and under what name it knows its endpoint.
#[derive(Debug, Clone)]
pub struct Snapshots {
    pub dir: PathBuf,
    /// The endpoint's name (`embedded:<database>` for the embedded server, whose port
    /// changes from run to run).
    pub endpoint: String,
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    endpoint: &'a str,
    cursor: &'a str,
    observed: &'a Observed,
}

#[derive(Deserialize)]
struct Snapshot {
    endpoint: String,
    cursor: String,
    observed: Observed,
}

/// One answer of `GET /v1/changes`.
#[derive(Deserialize)]
struct FeedPage {
    changes: Vec<Change>,
    cursor: String,
    more: bool,
    /// The last page of an answer with `since`: per kind, the objects and their
    /// versions' sum, who the token acts as, and the account (a server before these two
    /// answered the digest only).
    #[serde(default)]
    digest: Option<BTreeMap<Kind, KindDigest>>,
    #[serde(default)]
    whoami: Option<read::WhoAmI>,
    #[serde(default)]
    account: Option<Account>,
}

/// The changes since a cursor, read to the end.
struct FeedRead {
    changes: Vec<Change>,
    cursor: String,
    digest: BTreeMap<Kind, KindDigest>,
    whoami: Option<read::WhoAmI>,
    account: Option<Account>,
}

/// What the change feed says since a cursor, in one request ([`super::Provider::since`]).
#[derive(Debug, Clone)]
pub struct Since {
    /// Keys changed since the cursor: 0 when nothing was committed since, else at
    /// least 1 (not counted further).
    pub changed: usize,
    /// Per kind, the live objects and the sum of their versions (when `changed` is 0).
    pub digest: BTreeMap<Kind, KindDigest>,
    pub principal: Principal,
    pub account: Account,
}

#[derive(Deserialize)]
struct Change {
    kind: Kind,
    key: String,
    object: Option<Box<RawValue>>,
}

fn file_of(s: &Snapshots, token: Option<&str>) -> PathBuf {
    let mut h = blake3::Hasher::new_derive_key("roster live snapshot file");
    h.update(&(s.endpoint.len() as u64).to_le_bytes());
    h.update(s.endpoint.as_bytes());
    h.update(token.unwrap_or("").as_bytes());
    s.dir.join(format!("{}.bin", &h.finalize().to_hex()[..32]))
}

fn encode(endpoint: &str, cursor: &str, observed: &Observed) -> Option<Vec<u8>> {
    let payload = rmp_serde::to_vec_named(&SnapshotRef {
        endpoint,
        cursor,
        observed,
    })
    .map_err(|e| tracing::debug!("cannot encode the live snapshot: {e}"))
    .ok()?;
    let mut out = Vec::with_capacity(payload.len() + 96);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.push(VERSION.len() as u8);
    out.extend_from_slice(VERSION.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(blake3::hash(&payload).as_bytes());
    out.extend_from_slice(&payload);
    Some(out)
}

/// Reads a snapshot from `r` (a file), without holding the file's bytes: the header, a
/// first pass hashing the payload against the header's checksum, then (rewound) a second
/// pass decoding it. Nothing is decoded before the checksum holds, so a damaged file is
/// never trusted, not even to size an allocation.
fn decode<R: std::io::Read + std::io::Seek>(r: R) -> Option<Snapshot> {
    use std::io::{Read, Seek, SeekFrom};
    let mut r = std::io::BufReader::with_capacity(1 << 16, r);
    let mut head = [0u8; 13];
    r.read_exact(&mut head).ok()?;
    if &head[..8] != MAGIC || head[8..12] != FORMAT.to_le_bytes() {
        return None;
    }
    let mut version = vec![0u8; usize::from(head[12])];
    r.read_exact(&mut version).ok()?;
    if version != VERSION.as_bytes() {
        return None;
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    let mut sum = [0u8; 32];
    r.read_exact(&mut sum).ok()?;
    let start = r.stream_position().ok()?;
    let mut hasher = blake3::Hasher::new();
    let hashed = std::io::copy(&mut (&mut r).take(len), &mut hasher).ok()?;
    let mut past = [0u8; 1];
    if hashed != len || r.read(&mut past).ok()? != 0 || hasher.finalize().as_bytes() != &sum {
        return None;
    }
    r.seek(SeekFrom::Start(start)).ok()?;
    rmp_serde::from_read((&mut r).take(len))
        .map_err(|e| tracing::debug!("the live snapshot does not decode: {e}"))
        .ok()
}

fn load(path: &Path, endpoint: &str) -> Option<Snapshot> {
    let snap = decode(std::fs::File::open(path).ok()?);
    if snap.is_none() {
        tracing::debug!(
            "ignoring the live snapshot {}: not this build's, or damaged",
            path.display()
        );
    }
    snap.filter(|s| s.endpoint == endpoint)
}

/// Writes the snapshot (temporary file, then rename); a failure only costs the next run
/// a full read.
fn store(path: &Path, bytes: &[u8]) {
    let write = || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{}.tmp", hex::encode(rand::random::<[u8; 12]>())));
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let done = f.write_all(bytes).and_then(|()| f.sync_data());
        drop(f);
        match done.and_then(|()| std::fs::rename(&tmp, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    };
    if let Err(e) = write() {
        tracing::debug!("cannot write the live snapshot {}: {e}", path.display());
    }
    trim(path.parent().unwrap_or(Path::new(".")), MAX_FILES);
}

/// Deletes the least recently written snapshots beyond `keep`, and temporary files a
/// stopped run left behind.
fn trim(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let modified = e
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        match path.extension().and_then(|x| x.to_str()) {
            Some("bin") => files.push((modified, path)),
            Some("tmp") if modified.elapsed().unwrap_or_default().as_secs() > 3600 => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
    files.sort();
    let extra = files.len().saturating_sub(keep);
    for (_, path) in files.into_iter().take(extra) {
        let _ = std::fs::remove_file(path);
    }
}

/// Reads the live state through the snapshot: brought up to date from the change feed
/// when it can be, read in full (and kept) otherwise.
pub(crate) async fn read(p: &HttpProvider, s: &Snapshots) -> Result<Observed, ProviderError> {
    let path = file_of(s, p.token.as_deref());
    let (snap, path) = {
        let endpoint = s.endpoint.clone();
        tokio::task::spawn_blocking(move || (load(&path, &endpoint), path))
            .await
            .map_err(|e| ProviderError::Setup(format!("reading the live snapshot stopped: {e}")))?
    };
    if let Some(snap) = snap {
        if let Some((observed, cursor, changed)) = update(p, snap).await? {
            if changed {
                keep(&path, &s.endpoint, &cursor, &observed);
            }
            return Ok(observed);
        }
    }
    let head = head(p).await?;
    let mut observed = read::read(p).await?;
    if let Some(cursor) = head.filter(|_| feed_applies(&observed)) {
        observed.cursor = Some(cursor.clone());
        keep(&path, &s.endpoint, &cursor, &observed);
    }
    Ok(observed)
}

fn keep(path: &Path, endpoint: &str, cursor: &str, observed: &Observed) {
    let started = std::time::Instant::now();
    tokio::task::block_in_place(|| {
        let Some(bytes) = encode(endpoint, cursor, observed) else {
            return;
        };
        let encoded = started.elapsed();
        store(path, &bytes);
        tracing::debug!(
            bytes = bytes.len(),
            ?encoded,
            written = ?started.elapsed(),
            "live snapshot kept"
        );
    });
}

/// Whether the feed serves this principal (administrators, on a server with the feed).
fn feed_applies(o: &Observed) -> bool {
    matches!(o.principal, Some(Principal::Administrator { .. }))
        && o.capabilities.iter().any(|c| c == CHANGE_FEED)
}

/// The feed's head, or none where there is no feed for this token (404, 403).
async fn head(p: &HttpProvider) -> Result<Option<String>, ProviderError> {
    match p.send(Method::GET, "/v1/changes", None, &[]).await.result {
        Ok((_, bytes)) => Ok(serde_json::from_slice::<FeedPage>(&bytes)
            .map(|page| page.cursor)
            .map_err(|e| tracing::debug!("not a change feed answer: {e}"))
            .ok()),
        Err(ProviderError::Problem(pr)) if matches!(pr.status, 403..=405) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One page of the changes since `cursor` (at most `limit` keys, the server's default
/// when none); none when the feed cannot be used (the reason is logged).
async fn page(
    p: &HttpProvider,
    cursor: &str,
    limit: Option<usize>,
) -> Result<Option<FeedPage>, ProviderError> {
    let mut path = format!("/v1/changes?since={}", encode_key(cursor));
    if let Some(n) = limit {
        path.push_str(&format!("&limit={n}"));
    }
    let bytes = match p.send(Method::GET, &path, None, &[]).await.result {
        Ok((_, bytes)) => bytes,
        Err(ProviderError::Problem(pr)) if matches!(pr.status, 400 | 403 | 404 | 410) => {
            tracing::debug!(
                "the change feed cannot be used ({}): reading in full",
                pr.status
            );
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ProviderError::Unexpected {
            url: format!("{}{path}", p.base),
            detail: format!("not a change feed answer: {e}"),
        })
}

/// The changes since `cursor`, page after page; none when the feed cannot bring the
/// snapshot up to date (the reason is logged).
async fn changes(p: &HttpProvider, cursor: &str) -> Result<Option<FeedRead>, ProviderError> {
    let mut all = Vec::new();
    let mut cursor = cursor.to_string();
    for _ in 0..MAX_FEED_PAGES {
        let Some(page) = page(p, &cursor, None).await? else {
            return Ok(None);
        };
        all.extend(page.changes);
        cursor = page.cursor;
        if !page.more {
            return Ok(page.digest.map(|digest| FeedRead {
                changes: all,
                cursor,
                digest,
                whoami: page.whoami,
                account: page.account,
            }));
        }
    }
    tracing::debug!("more than {MAX_FEED_PAGES} pages of changes: reading in full");
    Ok(None)
}

/// [`super::Provider::since`]: one page of at most one key since `cursor`.
pub(crate) async fn since(p: &HttpProvider, cursor: &str) -> Result<Option<Since>, ProviderError> {
    let Some(page) = page(p, cursor, Some(1)).await? else {
        return Ok(None);
    };
    let changed = page.changes.len() + usize::from(page.more);
    match (page.whoami, page.account) {
        (Some(who), Some(account)) => Ok(Some(Since {
            changed,
            digest: page.digest.unwrap_or_default(),
            principal: who.principal,
            account,
        })),
        _ => {
            tracing::debug!(
                "the change feed does not say who the token is (changes since: {changed}): \
                 reading in full"
            );
            Ok(None)
        }
    }
}

/// The snapshot brought up to date, its new cursor and whether anything moved; none
/// when anything is doubtful.
async fn update(
    p: &HttpProvider,
    snap: Snapshot,
) -> Result<Option<(Observed, String, bool)>, ProviderError> {
    let Some(feed) = changes(p, &snap.cursor).await? else {
        return Ok(None);
    };
    let FeedRead {
        changes,
        cursor,
        digest,
        whoami,
        account,
    } = feed;
    let ((principal, capabilities), account) = match (whoami, account) {
        (Some(who), Some(account)) => ((Some(who.principal), who.capabilities), account),
        _ => {
            // A server whose feed says neither: asked apart.
            let (who, account) = tokio::try_join!(read::whoami(p), p.get_json("/v1/account"))?;
            let account =
                serde_json::from_value(account).map_err(|e| ProviderError::Unexpected {
                    url: format!("{}/v1/account", p.base),
                    detail: format!("not an account: {e}"),
                })?;
            (who, account)
        }
    };
    if principal.is_none() || principal != snap.observed.principal {
        tracing::debug!("the token acts as another principal than the snapshot's: reading in full");
        return Ok(None);
    }
    let mut observed = snap.observed;
    let changed = !changes.is_empty() || cursor != snap.cursor || observed.account != account;
    observed.account = account;
    observed.capabilities = capabilities;
    let url = format!("{}/v1/changes", p.base);
    for c in &changes {
        apply(&mut observed, c, &url)?;
    }
    observed.cursor = Some(cursor.clone());
    if let Some((kind, ours, theirs)) = crate::model::digest_mismatch(&observed.digest(), &digest) {
        tracing::debug!(
            "the snapshot's {kind}s do not match the live digest ({ours:?} against \
             {theirs:?}): reading in full"
        );
        return Ok(None);
    }
    tracing::debug!(
        "live snapshot brought up to date: {} keys changed",
        changes.len()
    );
    Ok(Some((observed, cursor, changed)))
}

/// Replaces one key of the snapshot by what the feed says it is now.
fn apply(o: &mut Observed, c: &Change, url: &str) -> Result<(), ProviderError> {
    fn put<T: LiveItem>(
        map: &mut BTreeMap<String, T>,
        versions: &mut BTreeMap<ObjectId, i64>,
        c: &Change,
        url: &str,
    ) -> Result<(), ProviderError> {
        let key = match c.kind {
            Kind::Administrator | Kind::Manager | Kind::Representative => c.key.to_lowercase(),
            _ => c.key.clone(),
        };
        map.remove(&key);
        versions.remove(&ObjectId::new(c.kind, key));
        if let Some(raw) = &c.object {
            let known = read::known_of::<T>(c.kind);
            let (key, version, obj) = read::raw_item::<T>(c.kind, raw, &known, url)?;
            versions.insert(ObjectId::new(c.kind, key.clone()), version);
            map.insert(key, obj);
        }
        Ok(())
    }
    let (org, v) = (&mut o.org, &mut o.versions);
    match c.kind {
        Kind::Portal => put::<Portal>(&mut org.portals, v, c, url),
        Kind::Team => put::<Team>(&mut org.teams, v, c, url),
        Kind::Administrator => put::<Administrator>(&mut org.administrators, v, c, url),
        Kind::Manager => put::<Manager>(&mut org.managers, v, c, url),
        Kind::Representative => put::<Representative>(&mut org.representatives, v, c, url),
        Kind::Campaign => put::<Campaign>(&mut org.campaigns, v, c, url),
        Kind::ContactGroup => put::<ContactGroup>(&mut org.contact_groups, v, c, url),
        // Not an object of the feed: the account is read whole on every run.
        Kind::Account => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_round_trips_and_a_damaged_one_is_refused() {
        let mut o = Observed::default();
        o.versions.insert(ObjectId::new(Kind::Portal, "web"), 3);
        o.principal = Some(Principal::Administrator {
            login: "root@x.example".into(),
        });
        let bytes = encode("embedded:/x/live.db", "abc.7", &o).unwrap();
        let decode = |b: &[u8]| decode(std::io::Cursor::new(b));
        let back = decode(&bytes).unwrap();
        assert_eq!(back.cursor, "abc.7");
        assert_eq!(back.endpoint, "embedded:/x/live.db");
        assert_eq!(back.observed.versions, o.versions);
        assert_eq!(back.observed.principal, o.principal);
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(
            decode(&bad).is_none(),
            "a flipped byte is caught by the checksum"
        );
        assert!(
            decode(&bytes[..bytes.len() - 1]).is_none(),
            "a truncated file is refused"
        );
        let mut foreign = bytes;
        foreign[8] ^= 1;
        assert!(decode(&foreign).is_none(), "another format is refused");
    }

    #[test]
    fn only_the_newest_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            let p = dir.path().join(format!("{i}.bin"));
            std::fs::write(&p, b"x").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        trim(dir.path(), 2);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["3.bin", "4.bin"]);
    }

    #[test]
    fn each_token_and_endpoint_has_its_own_file() {
        let s = Snapshots {
            dir: PathBuf::from("/state/cache/live"),
            endpoint: "https://a.example".into(),
        };
        let t = Snapshots {
            endpoint: "https://b.example".into(),
            ..s.clone()
        };
        assert_ne!(file_of(&s, Some("one")), file_of(&s, Some("two")));
        assert_ne!(file_of(&s, Some("one")), file_of(&t, Some("one")));
        assert!(!file_of(&s, Some("one")).to_string_lossy().contains("one"));
    }

    #[test]
    fn a_change_replaces_or_removes_the_key() {
        let mut o = Observed::default();
        let url = "http://x/v1/changes";
        let c: Change = serde_json::from_str(
            r#"{"kind":"portal","key":"web","object":{"name":"web","features":[],"version":2}}"#,
        )
        .unwrap();
        apply(&mut o, &c, url).unwrap();
        assert!(o.org.portals.contains_key("web"));
        assert_eq!(o.versions[&ObjectId::new(Kind::Portal, "web")], 2);
        let gone: Change =
            serde_json::from_str(r#"{"kind":"portal","key":"web","object":null}"#).unwrap();
        apply(&mut o, &gone, url).unwrap();
        assert!(o.org.portals.is_empty() && o.versions.is_empty());
        let rep: Change = serde_json::from_str(
            r#"{"kind":"representative","key":"JDoe@X.example","object":null}"#,
        )
        .unwrap();
        o.versions
            .insert(ObjectId::new(Kind::Representative, "jdoe@x.example"), 1);
        apply(&mut o, &rep, url).unwrap();
        assert!(o.versions.is_empty(), "logins compare ignoring case");
        assert_eq!(o.digest(), BTreeMap::new());
    }
}
