//! The live read: every collection listed concurrently, each in pages of 1000 following
//! `next_cursor`, plus `/v1/account` and `/v1/whoami`; never one GET per object.
//!
//! Each item's `version` goes to [`Observed::versions`]; the rest becomes the model type.
//! Fields the model does not know (a newer server's additions) are dropped rather than
//! failing the read, and logins are lower-cased, so that nothing shows as drift that is
//! not: the plan compares model values only.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::sync::Arc;

use reqwest::Method;
use schemars::JsonSchema;
use serde::de::value::{CowStrDeserializer, MapAccessDeserializer};
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{HttpProvider, Provider, ProviderError, encode_key};
use crate::model::{
    Account, Administrator, Campaign, ContactGroup, Kind, Manager, ObjectId, Observed, Portal,
    Principal, Representative, Team,
};

/// Page size of list reads (the API's maximum).
pub const PAGE_SIZE: usize = 1000;

/// The members of one JSON object, in order, values left as raw JSON text borrowed from
/// the page: nothing is allocated per value until the model type is built from them.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Fields<'de>, A::Error> {
                let mut v: Vec<(Cow<'de, str>, &'de RawValue)> =
                    Vec::with_capacity(m.size_hint().unwrap_or(16));
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    let val: &'de RawValue = m.next_value()?;
                    // A repeated member: the last one counts (as in a parsed JSON object).
                    if let Some(slot) = v.iter_mut().find(|(k2, _)| *k2 == k) {
                        slot.1 = val;
                    } else {
                        v.push((k, val));
                    }
                }
                Ok(Fields(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// The parsed JSON value of one member (small: a version, a key, a cursor).
fn value_of(raw: Option<&RawValue>) -> Option<Value> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

/// One list page, checked: its raw items and its `next_cursor` (`None` on the last page).
fn page_parts<'a>(
    bytes: &'a [u8],
    unexpected: &dyn Fn(String) -> ProviderError,
) -> Result<(&'a RawValue, Option<String>), ProviderError> {
    let page: Fields<'a> = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            unexpected("a list answer must be an object with `items`".into())
        }
        _ => unexpected(format!("the body is not json: {e}")),
    })?;
    let items = page
        .get("items")
        .filter(|r| r.get().starts_with('['))
        .ok_or_else(|| unexpected("a list answer must hold an `items` array".into()))?;
    let next = match value_of(page.get("next_cursor")) {
        Some(Value::String(c)) if !c.is_empty() => Some(c),
        _ => None,
    };
    Ok((items, next))
}

/// A model type as the live read builds it.
pub(crate) trait LiveItem: DeserializeOwned + JsonSchema + Send + 'static {
    /// Logins compare ignoring case (DESIGN §2): lower-cases every login of the object.
    fn lower_logins(&mut self) {}
    /// The object's key (the value of its kind's key field).
    fn key(&self) -> &str;
}

impl LiveItem for Portal {
    fn key(&self) -> &str {
        &self.name
    }
}
impl LiveItem for ContactGroup {
    fn key(&self) -> &str {
        &self.name
    }
}
impl LiveItem for Team {
    fn key(&self) -> &str {
        &self.path
    }
    fn lower_logins(&mut self) {
        if let Some(l) = &mut self.leader {
            *l = l.to_lowercase();
        }
    }
}
impl LiveItem for Administrator {
    fn key(&self) -> &str {
        &self.login
    }
    fn lower_logins(&mut self) {
        self.login = self.login.to_lowercase();
    }
}
impl LiveItem for Manager {
    fn key(&self) -> &str {
        &self.login
    }
    fn lower_logins(&mut self) {
        self.login = self.login.to_lowercase();
    }
}
impl LiveItem for Representative {
    fn key(&self) -> &str {
        &self.login
    }
    fn lower_logins(&mut self) {
        self.login = self.login.to_lowercase();
    }
}
impl LiveItem for Campaign {
    fn key(&self) -> &str {
        &self.name
    }
    fn lower_logins(&mut self) {
        let reps = std::mem::take(&mut self.representatives);
        self.representatives = reps.into_iter().map(|l| l.to_lowercase()).collect();
    }
}

/// The items of one page → (key, version, model object), in page order.
fn page_items<T: LiveItem>(
    kind: Kind,
    bytes: &[u8],
    known: &BTreeSet<String>,
    url: &str,
) -> Result<Vec<(String, i64, T)>, ProviderError> {
    let unexpected = |detail: String| ProviderError::Unexpected {
        url: url.to_string(),
        detail,
    };
    if kind != Kind::ContactGroup {
        if let Some(items) = page_items_at_once::<T>(bytes, known) {
            return Ok(items);
        }
    }
    let (items, _) = page_parts(bytes, &unexpected)?;
    let items: Vec<&RawValue> = serde_json::from_str(items.get())
        .map_err(|e| unexpected(format!("the `items` array cannot be read: {e}")))?;
    items
        .into_iter()
        .map(|raw| raw_item::<T>(kind, raw, known, url))
        .collect()
}

/// The items of one page in a single pass over its text, each object straight into the
/// model type: `version` taken aside, members the model does not know skipped. `None`
/// when anything is unusual (a `null` for a field that is not optional, a repeated
/// member, a missing `version`…): the caller then takes the careful path, which also
/// explains what is wrong. Contact groups, whose `shared_with` keys are logins to
/// lower-case, always take the careful path.
fn page_items_at_once<T: LiveItem>(
    bytes: &[u8],
    known: &BTreeSet<String>,
) -> Option<Vec<(String, i64, T)>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let items = PageSeed::<T> {
        known,
        item: PhantomData,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(
        items
            .into_iter()
            .map(|(version, mut obj)| {
                obj.lower_logins();
                (obj.key().to_owned(), version, obj)
            })
            .collect(),
    )
}

/// A list page (`{"items": [...], ...}`) → its items with their versions.
struct PageSeed<'k, T> {
    known: &'k BTreeSet<String>,
    item: PhantomData<T>,
}

impl<'de, T: LiveItem> DeserializeSeed<'de> for PageSeed<'_, T> {
    type Value = Vec<(i64, T)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: LiveItem> Visitor<'de> for PageSeed<'_, T> {
    type Value = Vec<(i64, T)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list page")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut items = None;
        while let Some(k) = m.next_key::<Cow<'de, str>>()? {
            if k == "items" && items.is_none() {
                items = Some(m.next_value_seed(ItemsSeed::<T> {
                    known: self.known,
                    item: PhantomData,
                })?);
            } else if k == "items" {
                return Err(serde::de::Error::duplicate_field("items"));
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        items.ok_or_else(|| serde::de::Error::missing_field("items"))
    }
}

/// The `items` array of a page.
struct ItemsSeed<'k, T> {
    known: &'k BTreeSet<String>,
    item: PhantomData<T>,
}

impl<'de, T: LiveItem> DeserializeSeed<'de> for ItemsSeed<'_, T> {
    type Value = Vec<(i64, T)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: LiveItem> Visitor<'de> for ItemsSeed<'_, T> {
    type Value = Vec<(i64, T)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(s.size_hint().unwrap_or(PAGE_SIZE));
        while let Some(item) = s.next_element_seed(ItemSeed::<T> {
            known: self.known,
            item: PhantomData,
        })? {
            out.push(item);
        }
        Ok(out)
    }
}

/// One item: the model type built from its members as they are read.
struct ItemSeed<'k, T> {
    known: &'k BTreeSet<String>,
    item: PhantomData<T>,
}

impl<'de, T: LiveItem> DeserializeSeed<'de> for ItemSeed<'_, T> {
    type Value = (i64, T);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: LiveItem> Visitor<'de> for ItemSeed<'_, T> {
    type Value = (i64, T);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
        let mut members = KnownMembers {
            inner: m,
            known: self.known,
            version: None,
        };
        let obj = T::deserialize(MapAccessDeserializer::new(&mut members))?;
        let version = members
            .version
            .ok_or_else(|| serde::de::Error::missing_field("version"))?;
        Ok((version, obj))
    }
}

/// The members of an item that the model knows; `version` is kept aside.
struct KnownMembers<'k, A> {
    inner: A,
    known: &'k BTreeSet<String>,
    version: Option<i64>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for KnownMembers<'_, A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(k) = self.inner.next_key::<Cow<'de, str>>()? {
            if k == "version" {
                if self.version.is_some() {
                    return Err(serde::de::Error::duplicate_field("version"));
                }
                self.version = Some(self.inner.next_value()?);
            } else if self.known.contains(k.as_ref()) {
                return seed.deserialize(CowStrDeserializer::new(k)).map(Some);
            } else {
                self.inner.next_value::<IgnoredAny>()?;
            }
        }
        Ok(None)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// Lists every item of a collection, page after page. Each page is turned into model
/// objects on a blocking thread while the next page is already being fetched (its
/// cursor is read first, without building the items).
pub(crate) async fn list<T: LiveItem>(
    p: &HttpProvider,
    kind: Kind,
) -> Result<Vec<(String, i64, T)>, ProviderError> {
    let known = Arc::new(known_of::<T>(kind));
    let list_url = Arc::new(format!("{}/v1/{}", p.base_url(), kind.collection()));
    let mut parsing = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen_cursors = BTreeSet::new();
    loop {
        let mut path = format!("/v1/{}?limit={PAGE_SIZE}", kind.collection());
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&encode_key(c));
        }
        let (_, bytes) = p.send(Method::GET, &path, None, &[]).await.result?;
        let url = format!("{}{}", p.base_url(), path);
        let unexpected = |detail: String| ProviderError::Unexpected {
            url: url.clone(),
            detail,
        };
        let (_, next) = page_parts(&bytes, &unexpected)?;
        let (known, list_url) = (known.clone(), list_url.clone());
        parsing.push(tokio::task::spawn_blocking(move || {
            page_items::<T>(kind, &bytes, &known, &list_url)
        }));
        match next {
            Some(c) => {
                // A server that hands out the same cursor twice would loop forever.
                if !seen_cursors.insert(c.clone()) {
                    return Err(unexpected("the server repeated a `next_cursor`".into()));
                }
                cursor = Some(c);
            }
            None => break,
        }
    }
    let mut items = Vec::new();
    for h in parsing {
        let page = h.await.map_err(|e| ProviderError::Unexpected {
            url: list_url.to_string(),
            detail: format!("reading a page stopped unexpectedly: {e}"),
        })??;
        if items.is_empty() {
            items = page;
        } else {
            items.extend(page);
        }
    }
    Ok(items)
}

/// The members of a live item of `kind` that the model keeps.
pub(super) fn known_of<T: JsonSchema>(kind: Kind) -> BTreeSet<String> {
    let mut known = known_fields::<T>();
    if matches!(kind, Kind::Campaign | Kind::ContactGroup) {
        // Left out of the declaration's schema, answered to a manager token.
        known.insert("hidden_members".to_string());
    }
    known
}

/// The top-level properties of a model type, from its JSON Schema.
fn known_fields<T: JsonSchema>() -> BTreeSet<String> {
    let schema = schemars::schema_for!(T);
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// One live item → (key, version, model object).
fn item<T: DeserializeOwned>(
    kind: Kind,
    mut v: Value,
    known: &BTreeSet<String>,
    url: &str,
) -> Result<(String, i64, T), ProviderError> {
    let unexpected = |detail: String| ProviderError::Unexpected {
        url: url.to_string(),
        detail,
    };
    let Value::Object(obj) = &mut v else {
        return Err(unexpected(format!("a {kind} item is not an object")));
    };
    let version = match obj.remove("version") {
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    let key = obj
        .get(kind.key_field())
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            unexpected(format!(
                "a {kind} item has no `{}` string",
                kind.key_field()
            ))
        })?;
    let version =
        version.ok_or_else(|| unexpected(format!("{kind}/{key} has no integer `version`")))?;
    obj.retain(|k, _| {
        let keep = known.contains(k);
        if !keep {
            tracing::debug!("ignoring field `{k}` of {kind}/{key} (not in the model)");
        }
        keep
    });
    normalize(kind, obj);
    let obj: T = serde_json::from_value(v)
        .map_err(|e| unexpected(format!("{kind}/{key} does not match the model: {e}")))?;
    let key = if matches!(
        kind,
        Kind::Administrator | Kind::Manager | Kind::Representative
    ) {
        key.to_lowercase()
    } else {
        key
    };
    Ok((key, version, obj))
}

/// One live item as raw JSON → (key, version, model object): the same checks and
/// normalisation as [`item`], without building a JSON tree (contact groups, whose
/// `shared_with` keys are logins, go through [`item`]).
pub(super) fn raw_item<T: LiveItem>(
    kind: Kind,
    raw: &RawValue,
    known: &BTreeSet<String>,
    url: &str,
) -> Result<(String, i64, T), ProviderError> {
    let unexpected = |detail: String| ProviderError::Unexpected {
        url: url.to_string(),
        detail,
    };
    if kind == Kind::ContactGroup {
        let v: Value = serde_json::from_str(raw.get())
            .map_err(|e| unexpected(format!("a {kind} item cannot be read: {e}")))?;
        return item::<T>(kind, v, known, url);
    }
    let Ok(Fields(mut fields)) = serde_json::from_str::<Fields>(raw.get()) else {
        return Err(unexpected(format!("a {kind} item is not an object")));
    };
    let version = match fields.iter().position(|(k, _)| k == "version") {
        Some(i) => match value_of(Some(fields.remove(i).1)) {
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        },
        None => None,
    };
    let key_raw = fields
        .iter()
        .find(|(k, _)| k == kind.key_field())
        .map(|(_, v)| *v);
    let key = match value_of(key_raw) {
        Some(Value::String(k)) => k,
        _ => {
            return Err(unexpected(format!(
                "a {kind} item has no `{}` string",
                kind.key_field()
            )));
        }
    };
    let version =
        version.ok_or_else(|| unexpected(format!("{kind}/{key} has no integer `version`")))?;
    fields.retain(|(k, v)| {
        if !known.contains(k.as_ref()) {
            tracing::debug!("ignoring field `{k}` of {kind}/{key} (not in the model)");
            return false;
        }
        // `null` for an optional field means absent.
        v.get() != "null"
    });
    let de = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(fields.into_iter());
    let mut obj = T::deserialize(de)
        .map_err(|e| unexpected(format!("{kind}/{key} does not match the model: {e}")))?;
    obj.lower_logins();
    let key = if matches!(
        kind,
        Kind::Administrator | Kind::Manager | Kind::Representative
    ) {
        key.to_lowercase()
    } else {
        key
    };
    Ok((key, version, obj))
}

fn lower_str(v: &mut Value) {
    if let Value::String(s) = v {
        *s = s.to_lowercase();
    }
}

fn lower_array(v: Option<&mut Value>) {
    if let Some(Value::Array(a)) = v {
        a.iter_mut().for_each(lower_str);
    }
}

/// Logins compare ignoring case (DESIGN §2): lower-case every login the server returns.
/// `null` for an optional field means absent.
fn normalize(kind: Kind, obj: &mut Map<String, Value>) {
    obj.retain(|_, v| !v.is_null());
    match kind {
        Kind::Administrator | Kind::Manager | Kind::Representative => {
            if let Some(l) = obj.get_mut("login") {
                lower_str(l);
            }
        }
        Kind::Team => {
            if let Some(l) = obj.get_mut("leader") {
                lower_str(l);
            }
        }
        Kind::Campaign => lower_array(obj.get_mut("representatives")),
        Kind::ContactGroup => {
            if let Some(Value::Object(m)) = obj.get_mut("shared_with") {
                let old = std::mem::take(m);
                *m = old
                    .into_iter()
                    .map(|(k, v)| (k.to_lowercase(), v))
                    .collect();
            }
        }
        Kind::Portal | Kind::Account => {}
    }
}

fn collect<T>(
    p: &HttpProvider,
    kind: Kind,
    items: Vec<(String, i64, T)>,
    versions: &mut Vec<(ObjectId, i64)>,
) -> Result<std::collections::BTreeMap<String, T>, ProviderError> {
    let mut items = items;
    // Lists come in key order (then this sort is one pass); built from sorted items the
    // map's nodes are full (`model::full_map`).
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = items.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ProviderError::Unexpected {
            url: format!("{}/v1/{}", p.base_url(), kind.collection()),
            detail: format!("{} is listed twice", ObjectId::new(kind, w[0].0.clone())),
        });
    }
    versions.extend(
        items
            .iter()
            .map(|(key, version, _)| (ObjectId::new(kind, key.clone()), *version)),
    );
    Ok(items.into_iter().map(|(key, _, obj)| (key, obj)).collect())
}

/// What `/v1/whoami` answers: who the token acts as, and the server's capabilities.
#[derive(serde::Deserialize)]
pub(super) struct WhoAmI {
    #[serde(flatten)]
    pub(super) principal: Principal,
    #[serde(default)]
    pub(super) capabilities: Vec<String>,
}

/// Who the token acts as and the server's capabilities; `None` and none when the server
/// has no `/v1/whoami`.
pub(super) async fn whoami(
    p: &HttpProvider,
) -> Result<(Option<Principal>, Vec<String>), ProviderError> {
    match p.send(Method::GET, "/v1/whoami", None, &[]).await.result {
        Ok((_, bytes)) => serde_json::from_slice::<WhoAmI>(&bytes)
            .map(|w| (Some(w.principal), w.capabilities))
            .map_err(|e| ProviderError::Unexpected {
                url: format!("{}/v1/whoami", p.base_url()),
                detail: format!("not a principal: {e}"),
            }),
        Err(ProviderError::Problem(pr)) if pr.status == 404 => Ok((None, Vec::new())),
        Err(e) => Err(e),
    }
}

/// The administrators, or the 403 a manager token gets (kept apart so that the other
/// reads go on; the caller decides with the principal in hand).
async fn admins_or_forbidden(
    p: &HttpProvider,
) -> Result<Result<Vec<(String, i64, Administrator)>, ProviderError>, ProviderError> {
    match list::<Administrator>(p, Kind::Administrator).await {
        Err(ProviderError::Problem(pr)) if pr.status == 403 => Ok(Err(ProviderError::Problem(pr))),
        other => other.map(Ok),
    }
}

/// Reads the whole live state.
pub(crate) async fn read(p: &HttpProvider) -> Result<Observed, ProviderError> {
    let (
        account,
        (principal, capabilities),
        portals,
        teams,
        admins,
        managers,
        reps,
        campaigns,
        groups,
    ) = tokio::try_join!(
        p.get_json("/v1/account"),
        whoami(p),
        list::<Portal>(p, Kind::Portal),
        list::<Team>(p, Kind::Team),
        admins_or_forbidden(p),
        list::<Manager>(p, Kind::Manager),
        list::<Representative>(p, Kind::Representative),
        list::<Campaign>(p, Kind::Campaign),
        list::<ContactGroup>(p, Kind::ContactGroup),
    )?;
    // A manager token may not list administrators (403, docs/api.md): they are
    // account-level and out of its scope, so the plan reports them instead of failing.
    let admins = match admins {
        Ok(items) => items,
        Err(e) if matches!(principal, Some(Principal::Manager { .. })) => {
            tracing::debug!("administrators are not readable with a manager token: {e}");
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let account: Account =
        serde_json::from_value(account).map_err(|e| ProviderError::Unexpected {
            url: format!("{}/v1/account", p.base_url()),
            detail: format!("not an account: {e}"),
        })?;
    let mut obs = Observed {
        account,
        principal,
        capabilities,
        ..Observed::default()
    };
    let mut versions = Vec::new();
    let v = &mut versions;
    obs.org.portals = collect(p, Kind::Portal, portals, v)?;
    obs.org.teams = collect(p, Kind::Team, teams, v)?;
    obs.org.administrators = collect(p, Kind::Administrator, admins, v)?;
    obs.org.managers = collect(p, Kind::Manager, managers, v)?;
    obs.org.representatives = collect(p, Kind::Representative, reps, v)?;
    obs.org.campaigns = collect(p, Kind::Campaign, campaigns, v)?;
    obs.org.contact_groups = collect(p, Kind::ContactGroup, groups, v)?;
    obs.versions = versions.into_iter().collect();
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_is_split_off_and_unknown_fields_dropped() {
        let known = known_fields::<Representative>();
        assert!(known.contains("login") && known.contains("sign_in"));
        let (key, version, rep) = item::<Representative>(
            Kind::Representative,
            json!({"login":"JDoe@Acme.example","email":"jdoe@acme.example","first_name":"John",
                   "last_name":"Doe","username":"jdoe","language":"fr","team":null,
                   "status":"active","features":["reports","admin_center_access"],
                   "multisession":1,"portals":[],"version":7,"created_at":"2026-01-01T00:00:00Z",
                   "password":{"rotation":"2026-11"}}),
            &known,
            "http://x/v1/representatives",
        )
        .unwrap();
        assert_eq!(key, "jdoe@acme.example");
        assert_eq!(version, 7);
        assert_eq!(rep.login, "jdoe@acme.example");
        assert_eq!(rep.team, None);
        assert_eq!(rep.password.unwrap().rotation.as_deref(), Some("2026-11"));
    }

    #[test]
    fn an_item_without_version_is_an_error_naming_it() {
        let known = known_fields::<Portal>();
        let e = item::<Portal>(
            Kind::Portal,
            json!({"name":"web","features":[]}),
            &known,
            "http://x/v1/portals",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("portal/web has no integer `version`"),
            "{e}"
        );
    }

    #[test]
    fn raw_items_match_the_json_tree_path() {
        let known = known_fields::<Representative>();
        let v = json!({"login":"JDoe@Acme.example","email":"jdoe@acme.example","first_name":"John",
               "last_name":"Doe","username":"jdoe","language":"fr","team":null,
               "status":"active","features":["reports"],"multisession":1,"portals":[],
               "version":7,"created_at":"2026-01-01T00:00:00Z","password":{"rotation":"2026-11"}});
        let raw = RawValue::from_string(v.to_string()).unwrap();
        let fast = raw_item::<Representative>(Kind::Representative, &raw, &known, "u").unwrap();
        let slow = item::<Representative>(Kind::Representative, v, &known, "u").unwrap();
        assert_eq!((fast.0.as_str(), fast.1), (slow.0.as_str(), slow.1));
        assert_eq!(fast.2, slow.2);
        assert_eq!(fast.2.login, "jdoe@acme.example");
        let bad = RawValue::from_string(r#"{"name":"web","features":[]}"#.into()).unwrap();
        let e = raw_item::<Portal>(Kind::Portal, &bad, &known_fields::<Portal>(), "u").unwrap_err();
        assert!(
            e.to_string()
                .contains("portal/web has no integer `version`"),
            "{e}"
        );
    }

    #[test]
    fn a_page_gives_its_items_and_cursor() {
        let body = br#"{"items":[{"name":"b","features":[],"version":2}],"next_cursor":"Yg"}"#;
        let un = |d: String| ProviderError::Unexpected {
            url: "u".into(),
            detail: d,
        };
        let (_, next) = page_parts(body, &un).unwrap();
        assert_eq!(next.as_deref(), Some("Yg"));
        let items =
            page_items::<Portal>(Kind::Portal, body, &known_fields::<Portal>(), "u").unwrap();
        assert_eq!((items[0].0.as_str(), items[0].1), ("b", 2));
        let e = page_parts(br#"{"items":{}}"#, &un).unwrap_err();
        assert!(e.to_string().contains("`items` array"), "{e}");
        let e = page_parts(br#"[1]"#, &un).unwrap_err();
        assert!(e.to_string().contains("must be an object"), "{e}");
        let e = page_parts(br#"{"items":["#, &un).unwrap_err();
        assert!(e.to_string().contains("not json"), "{e}");
    }

    #[test]
    fn a_page_read_at_once_matches_the_careful_path() {
        let known = known_fields::<Representative>();
        let items = [
            json!({"login":"JDoe@Acme.example","email":"jdoe@acme.example","first_name":"John",
                   "last_name":"Doe","username":"jdoe","language":"fr","team":null,
                   "status":"active","features":["reports"],"multisession":1,"portals":["web"],
                   "version":7,"created_at":"2026-01-01T00:00:00Z","password":{"rotation":"2026-11"}}),
            json!({"version":3,"login":"ann@acme.example","email":"ann@acme.example",
                   "first_name":"Ann","last_name":"Lee","username":"alee","language":"pl",
                   "status":"inactive","features":[],"portals":[],"extra":{"nested":[1,{"version":9}]}}),
        ];
        let body = json!({"next_cursor": null, "items": items}).to_string();
        let fast = page_items_at_once::<Representative>(body.as_bytes(), &known)
            .expect("an ordinary page is read at once");
        let careful: Vec<_> = items
            .iter()
            .map(|v| item::<Representative>(Kind::Representative, v.clone(), &known, "u").unwrap())
            .collect();
        assert_eq!(fast, careful);
        assert_eq!((fast[0].0.as_str(), fast[0].1), ("jdoe@acme.example", 7));
        assert_eq!((fast[1].0.as_str(), fast[1].1), ("ann@acme.example", 3));

        // Anything unusual goes the careful way, which still reads what it can.
        let unusual = [
            // `null` for a field that is not optional means absent on the careful path.
            r#"{"items":[{"name":"web","features":null,"version":1}]}"#,
            r#"{"items":[{"name":"web","features":[]}]}"#,
            r#"{"items":[{"name":"web","name":"web2","features":[],"version":1}]}"#,
            r#"{"items":[{"name":"web","features":[],"version":1,"version":2}]}"#,
            r#"{"items":[{"name":"web","features":[],"version":"1"}]}"#,
            r#"{"next_cursor":null}"#,
            r#"{"items":[]} trailing"#,
        ];
        let known = known_fields::<Portal>();
        for body in unusual {
            assert!(
                page_items_at_once::<Portal>(body.as_bytes(), &known).is_none(),
                "read at once: {body}"
            );
        }
        let items = page_items::<Portal>(Kind::Portal, unusual[0].as_bytes(), &known, "u").unwrap();
        assert_eq!((items[0].0.as_str(), items[0].1), ("web", 1));
        assert!(items[0].2.features.is_empty());
    }

    #[test]
    fn contact_group_logins_are_lower_cased() {
        let known = known_fields::<ContactGroup>();
        let (_, _, g) = item::<ContactGroup>(
            Kind::ContactGroup,
            json!({"name":"vip","shared_with":{"Ann@X.example":"view"},"version":1}),
            &known,
            "u",
        )
        .unwrap();
        assert!(g.shared_with.contains_key("ann@x.example"));
    }
}
