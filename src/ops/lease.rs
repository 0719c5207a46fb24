//! The apply lease around `roster apply`'s writes (docs/api.md "Apply lease"), so that
//! two applies (two pipelines, two people) never write to one live system at once.
//!
//! `apply` calls [`acquire`] once the plan is final and confirmed, before its first
//! write: it takes the live system's lease (holder `user@host pid N`, plus the CI run
//! when there is one), and when another client holds it, says who and waits, retrying
//! every second, up to `--lock-timeout` (default 0: not at all). Past that, it prints
//! who holds the lease and until when and `apply` exits [`Exit::Locked`](super::Exit)
//! having written nothing. `plan` never takes the lease, nor does an apply with nothing
//! to change.
//!
//! Once held, [`Guard::recheck`] re-reads the live system when the plan may have gone
//! stale meanwhile: after waiting for another apply (which wrote in between, by
//! definition), or after a confirmation on the terminal (which may have taken minutes).
//! A stale plan is made again rather than sent as writes that would conflict. An
//! `--auto-approve` apply that took the lease at once skips that second read of the whole
//! live system: the window is the time between its read and its take, and even a write
//! in it loses nothing (`If-Match` fails the update; a create finds the object, 409).
//! [`Guard::around`] then runs the executor while renewing the lease every third of its
//! time to live, and releases it when the executor is done — on success, on failure,
//! and on Ctrl-C (which stops the writes: run apply again to finish). A client that
//! crashes leaves a lease that expires by itself. While the lease is held every write
//! carries it (`Roster-Lease`), so a client whose lease lapsed is refused by the server
//! rather than writing under the next holder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::plan::Plan;
use crate::provider::{Lease, LeaseHolder, Provider, Take};

/// How the apply lease is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// How long to wait for a lease another client holds (`--lock-timeout`; zero: fail
    /// at once).
    pub timeout: Duration,
    /// The lease's time to live; it is renewed every third of it.
    pub ttl: Duration,
}

/// The lease's time to live: a crashed apply holds the live system this long at most.
pub const TTL: Duration = Duration::from_secs(60);
/// How often a waiting apply tries again.
const POLL: Duration = Duration::from_secs(1);

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            timeout: Duration::ZERO,
            ttl: TTL,
        }
    }
}

/// Who takes the lease, as others will see it: `user@host pid N`, and the CI run when
/// the apply runs in one (GitHub Actions, GitLab CI).
pub fn holder() -> String {
    let user = whoami::username();
    let host = whoami::fallible::hostname().unwrap_or_else(|_| "unknown-host".into());
    let mut h = format!("{user}@{host} pid {}", std::process::id());
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(run) = var("GITHUB_RUN_ID") {
        let repo = var("GITHUB_REPOSITORY").map_or(String::new(), |r| format!(" of {r}"));
        h.push_str(&format!(", GitHub Actions run {run}{repo}"));
    } else if let Some(job) = var("CI_JOB_ID") {
        let project = var("CI_PROJECT_PATH").map_or(String::new(), |p| format!(" of {p}"));
        h.push_str(&format!(", GitLab CI job {job}{project}"));
    }
    h
}

/// The lease's purpose: what this apply runs.
pub fn purpose(paths: &[PathBuf], saved: Option<&Path>) -> String {
    match saved {
        Some(p) => format!("roster apply --plan {}", p.display()),
        None => {
            let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            format!("roster apply {}", paths.join(" "))
        }
    }
}

fn describe(h: &LeaseHolder) -> String {
    let mut s = h.holder.clone();
    if !h.purpose.is_empty() {
        s.push_str(&format!(" ({})", h.purpose));
    }
    if !h.taken_by.is_empty() {
        s.push_str(&format!(" with the token of {}", h.taken_by));
    }
    if !h.acquired_at.is_empty() {
        s.push_str(&format!(" since {}", h.acquired_at));
    }
    s.push_str(&format!(", until {}", h.expires_at));
    s
}

/// The message of an apply that gives up on a held lease.
fn locked_message(h: &LeaseHolder, waited: Duration) -> String {
    let wait = if waited.is_zero() {
        "wait for it to finish, or give --lock-timeout (e.g. 5m) to wait for it".to_string()
    } else {
        format!(
            "waited {}; give a longer --lock-timeout to wait more",
            humantime::format_duration(waited)
        )
    };
    format!(
        "the live system's apply lease is held by {}; nothing was written. {wait} \
         (a crashed client's lease expires by itself; an administrator may break it with DELETE /v1/lease)",
        describe(h)
    )
}

/// Takes the lease for `plan` (none is needed for an empty plan), waiting up to
/// `opts.timeout` for another holder. `None`: still held by another at the deadline; the
/// message is printed and nothing was written.
pub async fn acquire<'a, P: Provider>(
    provider: &'a P,
    opts: &LockOptions,
    plan: &Plan,
    purpose: &str,
) -> anyhow::Result<Option<Guard<'a, P>>> {
    if plan.is_empty() {
        return Ok(Some(Guard(None)));
    }
    let holder = holder();
    let deadline = Instant::now() + opts.timeout;
    let mut told: Option<String> = None;
    loop {
        let taken = provider
            .take_lease(&holder, purpose, opts.ttl)
            .await
            .with_context(|| {
                format!(
                    "cannot take the apply lease of the live system at {}",
                    provider.base_url()
                )
            })?;
        match taken {
            Take::Taken(lease) => {
                if told.is_some() {
                    anstream::eprintln!("took the apply lease; applying");
                }
                tracing::info!("took the apply lease until {}", lease.holder.expires_at);
                provider.hold_lease(Some(lease.id.clone()));
                return Ok(Some(Guard(Some(Held {
                    provider,
                    lease,
                    ttl: opts.ttl,
                    waited: told.is_some(),
                }))));
            }
            Take::Held(h) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    anstream::eprintln!("error: {}", locked_message(&h, opts.timeout));
                    return Ok(None);
                }
                if told.as_deref() != Some(h.holder.as_str()) {
                    anstream::eprintln!(
                        "the apply lease is held by {}; waiting up to {} for it",
                        describe(&h),
                        humantime::format_duration(Duration::from_secs(left.as_secs().max(1)))
                    );
                    told = Some(h.holder.clone());
                }
                tokio::time::sleep(left.min(POLL)).await;
            }
        }
    }
}

struct Held<'a, P: Provider> {
    provider: &'a P,
    lease: Lease,
    ttl: Duration,
    /// Whether another client held the lease first (and may have written meanwhile).
    waited: bool,
}

/// The lease while `apply` holds it (nothing for an empty plan).
pub struct Guard<'a, P: Provider>(Option<Held<'a, P>>);

impl<P: Provider> Guard<'_, P> {
    /// Under the lease: what changed on the live system since `plan` was made (see
    /// `plan::stale`); empty when the plan is current or empty. Read only when this
    /// apply waited for the lease, or when `delayed` (a confirmation on the terminal):
    /// see the module doc.
    pub async fn recheck(&self, plan: &Plan, delayed: bool) -> anyhow::Result<Vec<String>> {
        let Some(held) = self.0.as_ref().filter(|h| h.waited || delayed) else {
            return Ok(vec![]);
        };
        let observed = held.provider.read().await.with_context(|| {
            format!(
                "cannot read the live system at {}",
                held.provider.base_url()
            )
        })?;
        Ok(crate::plan::stale(plan, &observed))
    }

    /// Runs `work` (the executor) while renewing the lease, then releases it. Ctrl-C
    /// stops `work`, releases the lease and answers an error.
    pub async fn around<T>(self, work: impl Future<Output = T>) -> anyhow::Result<T> {
        let Some(held) = &self.0 else {
            return Ok(work.await);
        };
        let out = tokio::select! {
            done = work => Ok(done),
            never = renew(held) => match never {},
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
                "interrupted: the apply stopped before every change was made and released the apply lease; run it again to finish"
            )),
        };
        self.release().await;
        out
    }

    /// Releases the lease (a failure is only a warning: the lease expires by itself).
    pub async fn release(self) {
        let Some(held) = self.0 else {
            return;
        };
        held.provider.hold_lease(None);
        match held.provider.release_lease(&held.lease.id).await {
            Ok(()) => tracing::info!("released the apply lease"),
            Err(e) => tracing::warn!(
                "cannot release the apply lease ({e}); it expires by itself within {}",
                humantime::format_duration(held.ttl)
            ),
        }
    }
}

/// Renews the lease every third of its time to live; never returns. A lease that is
/// lost (expired, broken by an administrator) is said once: the writes that follow
/// carry it and the live system refuses them.
async fn renew<P: Provider>(held: &Held<'_, P>) -> std::convert::Infallible {
    let every = held.ttl / 3;
    loop {
        tokio::time::sleep(every).await;
        match held.provider.renew_lease(&held.lease.id, held.ttl).await {
            Ok(l) => tracing::debug!("renewed the apply lease until {}", l.holder.expires_at),
            Err(e) if matches!(e.status(), Some(403 | 404 | 409)) => {
                tracing::warn!(
                    "the apply lease was lost ({e}); the live system refuses the remaining writes; run apply again"
                );
                return std::future::pending().await;
            }
            Err(e) => tracing::warn!("cannot renew the apply lease ({e}); trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::memory::MemoryProvider;

    #[tokio::test]
    async fn the_lease_is_renewed_every_third_of_its_ttl_and_released_after_the_work() {
        let provider = MemoryProvider::new();
        let plan = one_change_plan();
        let opts = LockOptions {
            timeout: Duration::ZERO,
            ttl: Duration::from_millis(3000),
        };
        let guard = acquire(&provider, &opts, &plan, "roster apply org")
            .await
            .unwrap()
            .expect("the lease is free");
        assert_eq!(provider.held_lease().as_deref(), Some("mine"));
        let out = guard
            .around(tokio::time::sleep(Duration::from_millis(2500)))
            .await;
        assert!(out.is_ok());
        assert_eq!(
            provider.lease_calls(),
            ["take", "renew", "renew", "release"]
        );
        assert!(!provider.lease_held(), "released");
        assert_eq!(provider.held_lease(), None, "writes stop carrying it");
    }

    /// Another client holds the lease: with no time to wait, nothing is taken and the
    /// caller is told (`None`), and an empty plan needs no lease at all.
    #[tokio::test]
    async fn a_held_lease_is_not_taken_and_an_empty_plan_needs_none() {
        let provider = MemoryProvider::new().leased_to("bob@ci-2 pid 7");
        let opts = LockOptions {
            timeout: Duration::ZERO,
            ttl: Duration::from_secs(60),
        };
        let got = acquire(&provider, &opts, &one_change_plan(), "p")
            .await
            .unwrap();
        assert!(got.is_none());
        assert_eq!(provider.lease_calls(), ["take"]);
        assert_eq!(provider.held_lease(), None);
        let empty = crate::apply::tests::plan(vec![]);
        let got = acquire(&provider, &opts, &empty, "p").await.unwrap();
        assert!(got.is_some());
        assert_eq!(
            provider.lease_calls(),
            ["take"],
            "no call for an empty plan"
        );
    }

    fn one_change_plan() -> Plan {
        use crate::model::Kind;
        use crate::plan::Action;
        crate::apply::tests::plan(vec![crate::apply::tests::change(
            Kind::Portal,
            "p",
            Action::Create,
            &[],
        )])
    }

    fn h() -> LeaseHolder {
        LeaseHolder {
            holder: "ann@ci-1 pid 42".into(),
            purpose: "roster apply org".into(),
            taken_by: "admin@localhost".into(),
            acquired_at: "2026-12-03T09:00:00Z".into(),
            expires_at: "2026-12-03T09:01:00Z".into(),
        }
    }

    #[test]
    fn the_locked_message_names_the_holder_the_expiry_and_the_fix() {
        let m = locked_message(&h(), Duration::ZERO);
        assert!(
            m.contains("held by ann@ci-1 pid 42 (roster apply org)")
                && m.contains("until 2026-12-03T09:01:00Z")
                && m.contains("nothing was written")
                && m.contains("--lock-timeout"),
            "{m}"
        );
        let m = locked_message(&h(), Duration::from_secs(90));
        assert!(m.contains("waited 1m 30s"), "{m}");
    }

    #[test]
    fn the_holder_names_the_process_and_the_ci_run() {
        let me = holder();
        assert!(
            me.contains('@') && me.contains(&format!("pid {}", std::process::id())),
            "{me}"
        );
        assert_eq!(
            purpose(&[PathBuf::from("org"), PathBuf::from("more")], None),
            "roster apply org more"
        );
        assert_eq!(
            purpose(&[], Some(Path::new("plan.json"))),
            "roster apply --plan plan.json"
        );
    }
}
