//! The live read: every collection listed concurrently, each in pages of 1000 following
//! `next_cursor`, plus `/v1/account` and `/v1/whoami`; never one GET per object.
//!
//! Each item's `version` goes to [`Observed::versions`]; the rest becomes the model type.
//! Fields the model does not know (a newer server's additions) are dropped rather than
//! failing the read, and logins are lower-cased, so that nothing shows as drift that is
//! not: the plan compares model values only.

use std::collections::BTreeSet;

use reqwest::Method;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{HttpProvider, ProviderError, encode_key};
use crate::model::{
    Account, Administrator, Campaign, ContactGroup, Kind, Manager, ObjectId, Observed, Portal,
    Principal, Representative, Team,
};

/// Page size of list reads (the API's maximum).
pub const PAGE_SIZE: usize = 1000;

/// Lists every item of a collection, page after page.
pub(crate) async fn list(p: &HttpProvider, kind: Kind) -> Result<Vec<Value>, ProviderError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen_cursors = BTreeSet::new();
    loop {
        let mut path = format!("/v1/{}?limit={PAGE_SIZE}", kind.collection());
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&encode_key(c));
        }
        let page = p.get_json(&path).await?;
        let unexpected = |detail: &str| ProviderError::Unexpected {
            url: format!("{}{}", p.base_url(), path),
            detail: detail.to_string(),
        };
        let Value::Object(mut page) = page else {
            return Err(unexpected("a list answer must be an object with `items`"));
        };
        match page.remove("items") {
            Some(Value::Array(a)) => items.extend(a),
            _ => return Err(unexpected("a list answer must hold an `items` array")),
        }
        match page.remove("next_cursor") {
            Some(Value::String(c)) if !c.is_empty() => {
                // A server that hands out the same cursor twice would loop forever.
                if !seen_cursors.insert(c.clone()) {
                    return Err(unexpected("the server repeated a `next_cursor`"));
                }
                cursor = Some(c);
            }
            _ => return Ok(items),
        }
    }
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
        Kind::Portal => {}
    }
}

fn collect<T: DeserializeOwned + JsonSchema>(
    p: &HttpProvider,
    kind: Kind,
    items: Vec<Value>,
    versions: &mut std::collections::BTreeMap<ObjectId, i64>,
) -> Result<std::collections::BTreeMap<String, T>, ProviderError> {
    let known = known_fields::<T>();
    let url = format!("{}/v1/{}", p.base_url(), kind.collection());
    let mut out = std::collections::BTreeMap::new();
    for v in items {
        let (key, version, obj) = item::<T>(kind, v, &known, &url)?;
        versions.insert(ObjectId::new(kind, key.clone()), version);
        if out.insert(key.clone(), obj).is_some() {
            return Err(ProviderError::Unexpected {
                url: url.clone(),
                detail: format!("{kind}/{key} is listed twice"),
            });
        }
    }
    Ok(out)
}

/// Who the token acts as; `None` when the server has no `/v1/whoami`.
async fn whoami(p: &HttpProvider) -> Result<Option<Principal>, ProviderError> {
    match p.send(Method::GET, "/v1/whoami", None, &[]).await.result {
        Ok((_, bytes)) => serde_json::from_slice::<Principal>(&bytes)
            .map(Some)
            .map_err(|e| ProviderError::Unexpected {
                url: format!("{}/v1/whoami", p.base_url()),
                detail: format!("not a principal: {e}"),
            }),
        Err(ProviderError::Problem(pr)) if pr.status == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// The administrators, or the 403 a manager token gets (kept apart so that the other
/// reads go on; the caller decides with the principal in hand).
async fn admins_or_forbidden(
    p: &HttpProvider,
) -> Result<Result<Vec<Value>, ProviderError>, ProviderError> {
    match list(p, Kind::Administrator).await {
        Err(ProviderError::Problem(pr)) if pr.status == 403 => Ok(Err(ProviderError::Problem(pr))),
        other => other.map(Ok),
    }
}

/// Reads the whole live state.
pub(crate) async fn read(p: &HttpProvider) -> Result<Observed, ProviderError> {
    let (account, principal, portals, teams, admins, managers, reps, campaigns, groups) = tokio::try_join!(
        p.get_json("/v1/account"),
        whoami(p),
        list(p, Kind::Portal),
        list(p, Kind::Team),
        admins_or_forbidden(p),
        list(p, Kind::Manager),
        list(p, Kind::Representative),
        list(p, Kind::Campaign),
        list(p, Kind::ContactGroup),
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
        ..Observed::default()
    };
    let v = &mut obs.versions;
    obs.org.portals = collect::<Portal>(p, Kind::Portal, portals, v)?;
    obs.org.teams = collect::<Team>(p, Kind::Team, teams, v)?;
    obs.org.administrators = collect::<Administrator>(p, Kind::Administrator, admins, v)?;
    obs.org.managers = collect::<Manager>(p, Kind::Manager, managers, v)?;
    obs.org.representatives = collect::<Representative>(p, Kind::Representative, reps, v)?;
    obs.org.campaigns = collect::<Campaign>(p, Kind::Campaign, campaigns, v)?;
    obs.org.contact_groups = collect::<ContactGroup>(p, Kind::ContactGroup, groups, v)?;
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
