//! Deterministic large organizations, for benchmarks and tests (`roster generate`).
//!
//! Owns: turning a handful of counts and a seed into a directory of declaration files
//! that `config` loads with no error and no warning. Nothing reads back from it; the
//! output goes to disk (`generate`) or to memory (`generate_to_strings`, for tests).
//!
//! Determinism does not depend on any crate's random algorithm: a small SplitMix64 is
//! seeded per object (`seed`, kind, index), so object *i* is the same whatever the other
//! counts are, files can be rendered in parallel, and a campaign can name representative
//! *i* without generating the others. The YAML is written as text (no tree, no serde),
//! which keeps 100,000 representatives to about a second.
//!
//! How the rules are kept (DESIGN §2):
//! - rule 1: `reports`/`session_replay` only with `admin_center_access`,
//!   `export_session_replay` only with `session_replay` (features, `grantable`, rights);
//! - rule 2: representatives log in as `first.last<i>@support.example`, managers as
//!   `first.last<i>@corp.example`, administrators with no digit at `corp.example`, so
//!   logins never collide; declared usernames contain `_`, which derived ones never do;
//! - rule 3: teams are written before anything names them, a team's leader is
//!   representative *t* (always placed in team *t*, always active), campaigns and contact
//!   groups name representatives and managers by index;
//! - rule 4: a representative's session features are drawn only from what its portals
//!   enable.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::model::catalog::PORTAL_FEATURES;
use crate::model::{Feature, TeamRight};

/// Changes whenever the same options produce different files (caches, like the scale
/// bench's `target/bench-org`, compare it).
pub const GENERATOR_REVISION: u32 = 2;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub representatives: usize,
    pub teams: usize,
    pub managers: usize,
    pub portals: usize,
    pub seed: u64,
    /// Representatives per file.
    pub per_file: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            representatives: 1000,
            teams: 50,
            managers: 10,
            portals: 5,
            seed: 1,
            per_file: 5000,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateStats {
    /// Files written, in the order written (file names relative to the output directory).
    pub files: Vec<String>,
    pub bytes: u64,
    pub portals: usize,
    pub teams: usize,
    pub administrators: usize,
    pub managers: usize,
    pub representatives: usize,
    pub active_representatives: usize,
    pub campaigns: usize,
    pub contact_groups: usize,
}

const SCHEMA_LINE: &str = "# yaml-language-server: $schema=../../schemas/roster.schema.json\n";
const REP_DOMAIN: &str = "support.example";
const CORP_DOMAIN: &str = "corp.example";
/// Prefix of the representative files; stale ones are removed before writing.
const REP_FILE_PREFIX: &str = "representatives-";

// Streams of the per-object generators: the same index in two kinds never shares numbers.
const S_PORTAL: u64 = 1;
const S_TEAM: u64 = 2;
const S_MANAGER: u64 = 3;
const S_REP: u64 = 4;
const S_CAMPAIGN: u64 = 5;
const S_GROUP: u64 = 6;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever here.
#[derive(Debug, Clone)]
struct Rng(u64);

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    fn new(seed: u64, stream: u64, index: usize) -> Rng {
        Rng(mix(seed ^ mix((stream << 56) ^ index as u64)))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant at these sizes.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Names {
    language: &'static str,
    first: &'static [&'static str],
    last: &'static [&'static str],
}

const NAMES: &[Names] = &[
    Names {
        language: "fr",
        first: &[
            "Marie", "Camille", "Léa", "Hugo", "Théo", "Chloé", "Lucas", "Manon", "Élodie",
            "Julien", "Inès", "Mathis", "Zoé", "Antoine", "Céline",
        ],
        last: &[
            "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
            "Leroy", "Moreau", "Lefèvre", "Fournier", "Girard", "Mercier", "Faure",
        ],
    },
    Names {
        language: "pl",
        first: &[
            "Anna",
            "Katarzyna",
            "Małgorzata",
            "Piotr",
            "Krzysztof",
            "Tomasz",
            "Łukasz",
            "Agnieszka",
            "Michał",
            "Zofia",
            "Paweł",
            "Joanna",
            "Wojciech",
            "Ewa",
        ],
        last: &[
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Kowalczyk",
            "Kamiński",
            "Lewandowski",
            "Zieliński",
            "Szymański",
            "Woźniak",
            "Dąbrowski",
            "Mazur",
        ],
    },
    Names {
        language: "en",
        first: &[
            "Olivia", "James", "Amelia", "Oliver", "Emily", "Harry", "Grace", "Jack", "Sophie",
            "George", "Chloe", "Noah", "Ruby", "Liam",
        ],
        last: &[
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Evans", "Walker", "Wright", "Robinson", "Thompson", "Hughes",
        ],
    },
    Names {
        language: "de",
        first: &[
            "Lukas",
            "Mia",
            "Jonas",
            "Hannah",
            "Felix",
            "Lena",
            "Maximilian",
            "Jürgen",
            "Sophia",
            "Paul",
            "Katrin",
            "Björn",
            "Greta",
        ],
        last: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Schäfer",
            "Koch",
            "Krüger",
        ],
    },
    Names {
        language: "es",
        first: &[
            "Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Leo", "Valeria", "Daniel", "Paula",
            "Álvaro", "Carmen", "Javier", "Nuria",
        ],
        last: &[
            "García",
            "Rodríguez",
            "González",
            "Fernández",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Martín",
            "Jiménez",
            "Ruiz",
            "Moreno",
        ],
    },
];

const REGIONS: &[&str] = &[
    "Europe", "Americas", "Asia", "Africa", "Oceania", "Nordics", "Iberia", "Benelux",
];
/// Sites of each region, by the region's position in `REGIONS`.
const CITIES: &[&[&str]] = &[
    &[
        "Paris", "Warsaw", "Lyon", "Kraków", "Berlin", "Dublin", "Zürich", "Gdańsk", "Lille",
    ],
    &[
        "Montreal",
        "Austin",
        "Toronto",
        "Denver",
        "São Paulo",
        "Mexico City",
        "Chicago",
    ],
    &["Osaka", "Singapore", "Bangalore", "Manila", "Seoul"],
    &["Nairobi", "Casablanca", "Lagos", "Cape Town"],
    &["Sydney", "Auckland", "Perth"],
    &["Stockholm", "Oslo", "Helsinki", "Aarhus"],
    &["Madrid", "Lisbon", "Sevilla", "Porto", "Valencia"],
    &["Brussels", "Amsterdam", "Rotterdam", "Luxembourg"],
];
const FUNCTIONS: &[&str] = &[
    "Billing",
    "Onboarding",
    "Hardware",
    "Network",
    "Accounts",
    "Mobile",
    "Printing",
    "Security",
    "Escalations",
    "Night-Shift",
];
const PORTAL_NAMES: &[&str] = &[
    "web-support",
    "mobile-app",
    "partners",
    "internal-it",
    "kiosk",
    "premium",
    "field-service",
    "retail",
];
const CAMPAIGN_NAMES: &[&str] = &[
    "winter-renewals",
    "spring-onboarding",
    "fibre-migration",
    "loyalty-calls",
    "tax-season",
    "device-recall",
];
const GROUP_NAMES: &[&str] = &[
    "key-accounts",
    "hospitals",
    "schools",
    "city-halls",
    "retail-chains",
    "vip",
];

/// Account-level features a representative may have without any portal.
const ACCOUNT_FEATURES: &[Feature] = &[
    Feature::ScheduleReports,
    Feature::SaveAlertConfig,
    Feature::AllowSaveLoginPassword,
];

/// Feature names in catalog order (the order of `BTreeSet<Feature>`, as `export` writes).
fn feature_list(fs: &[Feature]) -> String {
    let mut v: Vec<Feature> = fs.to_vec();
    v.sort();
    v.dedup();
    let ids: Vec<&str> = v.iter().map(|f| f.id()).collect();
    format!("[{}]", ids.join(", "))
}

fn right_list(rs: &[TeamRight]) -> String {
    let mut v: Vec<TeamRight> = rs.to_vec();
    v.sort();
    v.dedup();
    let ids: Vec<&str> = v.iter().map(|r| r.id()).collect();
    format!("[{}]", ids.join(", "))
}

/// Writes `s` as a YAML scalar usable in block and flow context: plain when it is
/// unambiguously a string, else double-quoted.
fn scalar(s: &str) -> String {
    let first = s.chars().next();
    let plain = first.is_some_and(|c| c.is_alphanumeric())
        && !s.ends_with(' ')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.chars().any(|c| {
            matches!(
                c,
                ',' | '[' | ']' | '{' | '}' | '"' | '\'' | '\\' | '\t' | '\n'
            ) || c.is_control()
        })
        && !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | '_'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "nan" | "inf"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

fn flow<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    let parts: Vec<String> = items.into_iter().map(|s| scalar(s.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

/// Lower-case ASCII of a name, letters only (for logins).
fn fold(name: &str) -> String {
    deunicode::deunicode(name)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A portal: name and enabled session features.
struct PortalSpec {
    name: String,
    features: Vec<Feature>,
}

fn portal(opts: &GenerateOptions, i: usize) -> PortalSpec {
    let base = PORTAL_NAMES[i % PORTAL_NAMES.len()];
    let name = if i < PORTAL_NAMES.len() {
        base.to_string()
    } else {
        format!("{base}-{}", i / PORTAL_NAMES.len() + 1)
    };
    let features = if i == 0 {
        // One portal enables every session feature, so every combination is reachable.
        PORTAL_FEATURES.to_vec()
    } else {
        let mut rng = Rng::new(opts.seed, S_PORTAL, i);
        PORTAL_FEATURES
            .iter()
            .copied()
            .filter(|_| rng.chance(55))
            .collect()
    };
    PortalSpec { name, features }
}

/// The team tree: names, parents and levels, by index. Team *i*'s parent has a smaller
/// index, so writing in index order (depth-first from the roots) puts parents first.
struct Tree {
    names: Vec<String>,
    parent: Vec<Option<usize>>,
    paths: Vec<String>,
    children: Vec<Vec<usize>>,
}

fn tree(n: usize) -> Tree {
    // Three levels: ~cbrt(n) regions, up to regions² cities, the rest as functional teams.
    let roots = ((n as f64).cbrt().round() as usize).clamp(1, n.max(1));
    let level2 = (n - roots).min(roots * roots);
    let mut names = Vec::with_capacity(n);
    let mut parent = Vec::with_capacity(n);
    for i in 0..n {
        if i < roots {
            let base = REGIONS[i % REGIONS.len()];
            names.push(if i < REGIONS.len() {
                base.to_string()
            } else {
                format!("{base}-{}", i / REGIONS.len() + 1)
            });
            parent.push(None);
        } else if i < roots + level2 {
            // Round-robin over the regions; the m-th site of a region is named after the
            // region's cities, numbered once they run out (unique among siblings).
            let j = i - roots;
            let (root, m) = (j % roots, j / roots);
            let cities = CITIES[root % CITIES.len()];
            let base = cities[m % cities.len()];
            names.push(if m < cities.len() {
                base.to_string()
            } else {
                format!("{base}-{}", m / cities.len() + 1)
            });
            parent.push(Some(root));
        } else {
            let k = i - roots - level2;
            names.push(format!("{}-{:04}", FUNCTIONS[k % FUNCTIONS.len()], k + 1));
            parent.push(Some(roots + k % level2.max(1)));
        }
    }
    let mut paths: Vec<String> = Vec::with_capacity(n);
    let mut children = vec![Vec::new(); n];
    for i in 0..n {
        let path = match parent[i] {
            Some(p) => {
                children[p].push(i);
                format!("{}/{}", paths[p], names[i])
            }
            None => names[i].clone(),
        };
        paths.push(path);
    }
    Tree {
        names,
        parent,
        paths,
        children,
    }
}

/// A representative's identity: the first draws of its generator, so that campaigns and
/// contact groups can name representative *i* cheaply.
struct Identity {
    rng: Rng,
    language: &'static str,
    first: &'static str,
    last: &'static str,
    login: String,
}

fn rep_identity(seed: u64, i: usize) -> Identity {
    let mut rng = Rng::new(seed, S_REP, i);
    let names = rng.pick(NAMES);
    let first = *rng.pick(names.first);
    let last = *rng.pick(names.last);
    // Names hold no digit, so `<first>.<last><i>` is unique by `i`.
    let login = format!("{}.{}{}@{REP_DOMAIN}", fold(first), fold(last), i + 1);
    Identity {
        rng,
        language: names.language,
        first,
        last,
        login,
    }
}

fn manager_identity(seed: u64, i: usize) -> (Rng, String, String) {
    let mut rng = Rng::new(seed, S_MANAGER, i);
    let names = rng.pick(NAMES);
    let first = *rng.pick(names.first);
    let last = *rng.pick(names.last);
    let login = format!("{}.{}{}@{CORP_DOMAIN}", fold(first), fold(last), i + 1);
    (rng, format!("{first} {last}"), login)
}

/// The team of representative `i`: representative *t* sits in team *t* (it leads it),
/// the others are spread uniformly.
fn rep_team(opts: &GenerateOptions, i: usize, rng: &mut Rng) -> usize {
    if i < opts.teams {
        i
    } else {
        rng.below(opts.teams)
    }
}

fn check(opts: &GenerateOptions) -> io::Result<()> {
    let bad = |msg: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, msg.to_string()));
    if opts.teams == 0 {
        return bad("--teams must be at least 1");
    }
    if opts.portals == 0 {
        return bad("--portals must be at least 1");
    }
    if opts.per_file == 0 {
        return bad("--per-file must be at least 1");
    }
    Ok(())
}

fn header(out: &mut String) {
    out.push_str(SCHEMA_LINE);
    out.push_str("# generated by `roster generate`; deterministic for a given seed\n");
}

fn render_org(opts: &GenerateOptions) -> String {
    let mut s = String::new();
    header(&mut s);
    let _ = writeln!(
        s,
        "# representatives {}, teams {}, managers {}, portals {}, seed {}",
        opts.representatives, opts.teams, opts.managers, opts.portals, opts.seed
    );
    s.push_str("version: 1\n");
    s.push_str("policy:\n");
    s.push_str("  representatives: { unmanaged: warn, on_remove: deactivate }\n");
    s.push_str("  teams: { unmanaged: warn }\n");
    s.push_str("administrators:\n");
    for (login, name) in [
        ("it.ops@corp.example", "IT Operations"),
        ("helpdesk.owner@corp.example", "Helpdesk Owner"),
    ] {
        let _ = writeln!(
            s,
            "  - login: {login}\n    email: {login}\n    name: {name}"
        );
    }
    s
}

fn render_portals(opts: &GenerateOptions) -> String {
    let mut s = String::new();
    header(&mut s);
    s.push_str("portals:\n");
    for i in 0..opts.portals {
        let p = portal(opts, i);
        let _ = writeln!(s, "  - name: {}", scalar(&p.name));
        let _ = writeln!(s, "    features: {}", feature_list(&p.features));
    }
    s
}

fn render_teams(opts: &GenerateOptions, t: &Tree) -> String {
    fn one(opts: &GenerateOptions, t: &Tree, i: usize, depth: usize, s: &mut String) {
        let pad = "    ".repeat(depth);
        let mut rng = Rng::new(opts.seed, S_TEAM, i);
        let _ = writeln!(s, "{pad}  - name: {}", scalar(&t.names[i]));
        if rng.chance(60) {
            let what = match depth {
                0 => "region",
                1 => "site",
                _ => "team",
            };
            let _ = writeln!(
                s,
                "{pad}    description: {}",
                scalar(&format!("{} {what}", t.names[i]))
            );
        }
        if rng.chance(40) {
            let _ = writeln!(s, "{pad}    max_active_logins: {}", 5 + rng.below(196));
        }
        if i < opts.representatives && rng.chance(75) {
            let _ = writeln!(s, "{pad}    leader: {}", rep_identity(opts.seed, i).login);
        }
        if !t.children[i].is_empty() {
            let _ = writeln!(s, "{pad}    teams:");
            for &c in &t.children[i] {
                one(opts, t, c, depth + 1, s);
            }
        }
    }
    let mut s = String::new();
    header(&mut s);
    s.push_str("teams:\n");
    for i in (0..opts.teams).filter(|&i| t.parent[i].is_none()) {
        one(opts, t, i, 0, &mut s);
    }
    s
}

fn render_managers(opts: &GenerateOptions, t: &Tree) -> String {
    let mut s = String::new();
    header(&mut s);
    if opts.managers == 0 {
        s.push_str("managers: []\n");
        return s;
    }
    s.push_str("managers:\n");
    for i in 0..opts.managers {
        let (mut rng, name, login) = manager_identity(opts.seed, i);
        let _ = writeln!(
            s,
            "  - login: {login}\n    email: {login}\n    name: {name}"
        );
        let n_teams = 1 + rng.below(3);
        let teams: std::collections::BTreeSet<&str> = (0..n_teams)
            .map(|_| t.paths[rng.below(opts.teams)].as_str())
            .collect();
        let _ = writeln!(s, "    teams: {}", flow(teams));
        let mut rights: Vec<TeamRight> = TeamRight::ALL
            .iter()
            .copied()
            .filter(|r| {
                !matches!(
                    r,
                    TeamRight::ExportSessionReplay | TeamRight::ManageManagers
                ) && rng.chance(45)
            })
            .collect();
        if rights.contains(&TeamRight::SessionReplay) && rng.chance(50) {
            rights.push(TeamRight::ExportSessionReplay);
        }
        if rng.chance(10) {
            rights.push(TeamRight::ManageManagers);
        }
        if !rights.is_empty() {
            let _ = writeln!(s, "    team_rights: {}", right_list(&rights));
        }
        let mut grantable: Vec<Feature> = PORTAL_FEATURES
            .iter()
            .copied()
            .filter(|_| rng.chance(50))
            .collect();
        if rng.chance(60) {
            grantable.push(Feature::AdminCenterAccess);
            if rng.chance(60) {
                grantable.push(Feature::Reports);
            }
            if rng.chance(40) {
                grantable.push(Feature::SessionReplay);
                if rng.chance(50) {
                    grantable.push(Feature::ExportSessionReplay);
                }
            }
        }
        if !grantable.is_empty() {
            let _ = writeln!(s, "    grantable: {}", feature_list(&grantable));
        }
    }
    s
}

/// One representative; returns whether it is active.
fn render_rep(opts: &GenerateOptions, t: &Tree, i: usize, s: &mut String) -> bool {
    let Identity {
        mut rng,
        language,
        first,
        last,
        login,
    } = rep_identity(opts.seed, i);
    let _ = writeln!(s, "  - login: {login}\n    email: {login}");
    let _ = writeln!(
        s,
        "    first_name: {}\n    last_name: {}",
        scalar(first),
        scalar(last)
    );
    if rng.chance(2) {
        // Declared usernames hold `_`, which derived ones never do: no collision.
        let _ = writeln!(s, "    username: {}_{}_{}", fold(first), fold(last), i + 1);
    }
    let _ = writeln!(s, "    language: {language}");
    let team = rep_team(opts, i, &mut rng);
    let _ = writeln!(s, "    team: {}", scalar(&t.paths[team]));
    // Leaders (representative t of team t) stay active.
    let active = i < opts.teams || !rng.chance(6);
    if !active {
        s.push_str("    status: inactive\n");
    }
    let (a, b, c) = (rng.chance(30), rng.chance(40), rng.chance(10));
    if a || b || c {
        let mut parts = Vec::new();
        if a {
            parts.push("force_password_change: true");
        }
        if b {
            parts.push("self_service_password_reset: true");
        }
        if c {
            parts.push("force_email_validation: true");
        }
        let _ = writeln!(s, "    sign_in: {{ {} }}", parts.join(", "));
    }
    // Portals first: session features are drawn only from what they enable (rule 4).
    let n_portals = 1 + rng.below(opts.portals.min(2));
    let mut portals: Vec<usize> = (0..n_portals).map(|_| rng.below(opts.portals)).collect();
    portals.sort_unstable();
    portals.dedup();
    let specs: Vec<PortalSpec> = portals.iter().map(|&p| portal(opts, p)).collect();
    let enabled = |f: Feature| specs.iter().any(|p| p.features.contains(&f));
    let mut features: Vec<Feature> = Vec::new();
    if rng.chance(35) {
        features.push(Feature::AdminCenterAccess);
        if rng.chance(60) {
            features.push(Feature::Reports);
        }
        if rng.chance(35) {
            features.push(Feature::SessionReplay);
            if rng.chance(40) {
                features.push(Feature::ExportSessionReplay);
            }
        }
    }
    for f in ACCOUNT_FEATURES {
        if rng.chance(20) {
            features.push(*f);
        }
    }
    for f in PORTAL_FEATURES {
        if *f != Feature::Multisession && rng.chance(45) && enabled(*f) {
            features.push(*f);
        }
    }
    if !features.is_empty() {
        let _ = writeln!(s, "    features: {}", feature_list(&features));
    }
    if enabled(Feature::Multisession) && rng.chance(30) {
        let _ = writeln!(s, "    multisession: {}", 2 + rng.below(4));
    }
    let names: Vec<&str> = specs.iter().map(|p| p.name.as_str()).collect();
    let _ = writeln!(s, "    portals: {}", flow(names));
    active
}

fn render_rep_file(opts: &GenerateOptions, t: &Tree, file: usize) -> (String, usize) {
    let start = file * opts.per_file;
    let end = (start + opts.per_file).min(opts.representatives);
    let mut s = String::with_capacity((end - start) * 380 + 128);
    header(&mut s);
    let _ = writeln!(s, "# representatives {} to {}", start + 1, end);
    s.push_str("representatives:\n");
    let mut active = 0;
    for i in start..end {
        active += render_rep(opts, t, i, &mut s) as usize;
    }
    (s, active)
}

fn render_campaigns(opts: &GenerateOptions, t: &Tree) -> (String, usize) {
    let n = (opts.representatives / 1000).clamp(1, 200);
    let mut s = String::new();
    header(&mut s);
    s.push_str("campaigns:\n");
    for i in 0..n {
        let mut rng = Rng::new(opts.seed, S_CAMPAIGN, i);
        let base = CAMPAIGN_NAMES[i % CAMPAIGN_NAMES.len()];
        let _ = writeln!(s, "  - name: {base}-{:03}", i + 1);
        if rng.chance(15) {
            s.push_str("    active: false\n");
        }
        if opts.representatives > 0 {
            let members: std::collections::BTreeSet<String> = (0..10 + rng.below(41))
                .map(|_| rep_identity(opts.seed, rng.below(opts.representatives)).login)
                .collect();
            let _ = writeln!(s, "    representatives: {}", flow(members));
        }
        let teams: std::collections::BTreeSet<&str> = (0..1 + rng.below(3))
            .map(|_| t.paths[rng.below(opts.teams)].as_str())
            .collect();
        let _ = writeln!(s, "    teams: {}", flow(teams));
    }
    (s, n)
}

fn render_groups(opts: &GenerateOptions) -> (String, usize) {
    let n = (opts.representatives / 2000).clamp(1, 100);
    let mut s = String::new();
    header(&mut s);
    s.push_str("contact_groups:\n");
    for i in 0..n {
        let mut rng = Rng::new(opts.seed, S_GROUP, i);
        let base = GROUP_NAMES[i % GROUP_NAMES.len()];
        let _ = writeln!(s, "  - name: {base}-{:03}", i + 1);
        let mut shared = std::collections::BTreeMap::new();
        if opts.representatives > 0 {
            for _ in 0..3 + rng.below(10) {
                let login = rep_identity(opts.seed, rng.below(opts.representatives)).login;
                let perm = *rng.pick(&["view", "connect"]);
                shared.insert(login, perm);
            }
        }
        if opts.managers > 0 {
            for _ in 0..1 + rng.below(2) {
                let (_, _, login) = manager_identity(opts.seed, rng.below(opts.managers));
                let perm = *rng.pick(&["connect", "manage"]);
                shared.insert(login, perm);
            }
        }
        if shared.is_empty() {
            s.push_str("    shared_with: {}\n");
        } else {
            s.push_str("    shared_with:\n");
            for (login, perm) in shared {
                let _ = writeln!(s, "      {login}: {perm}");
            }
        }
    }
    (s, n)
}

fn rep_file_name(file: usize) -> String {
    format!("{REP_FILE_PREFIX}{:04}.yaml", file + 1)
}

/// Renders every file and hands each to `sink` as (file name, text). Representative
/// files are rendered in parallel; `sink` sees files in a fixed order.
fn render_all(
    opts: &GenerateOptions,
    sink: &(dyn Fn(&str, &str) -> io::Result<()> + Sync),
) -> io::Result<GenerateStats> {
    check(opts)?;
    let t = tree(opts.teams);
    let mut stats = GenerateStats {
        portals: opts.portals,
        teams: opts.teams,
        administrators: 2,
        managers: opts.managers,
        representatives: opts.representatives,
        ..Default::default()
    };
    let emit = |name: &str, text: &str, stats: &mut GenerateStats| -> io::Result<()> {
        sink(name, text)?;
        stats.files.push(name.to_string());
        stats.bytes += text.len() as u64;
        Ok(())
    };
    emit("org.yaml", &render_org(opts), &mut stats)?;
    emit("portals.yaml", &render_portals(opts), &mut stats)?;
    emit("teams.yaml", &render_teams(opts, &t), &mut stats)?;
    emit("managers.yaml", &render_managers(opts, &t), &mut stats)?;
    let n_files = opts.representatives.div_ceil(opts.per_file);
    let results: Vec<io::Result<(String, usize, usize)>> = (0..n_files)
        .into_par_iter()
        .map(|f| {
            let (text, active) = render_rep_file(opts, &t, f);
            let name = rep_file_name(f);
            sink(&name, &text)?;
            Ok((name, text.len(), active))
        })
        .collect();
    for r in results {
        let (name, len, active) = r?;
        stats.files.push(name);
        stats.bytes += len as u64;
        stats.active_representatives += active;
    }
    let (text, n) = render_campaigns(opts, &t);
    stats.campaigns = n;
    emit("campaigns.yaml", &text, &mut stats)?;
    let (text, n) = render_groups(opts);
    stats.contact_groups = n;
    emit("contact_groups.yaml", &text, &mut stats)?;
    Ok(stats)
}

/// Writes the organization into `out` (created if missing). Stale representative files of
/// an earlier, larger run are removed first, so the directory always holds one org.
pub fn generate(opts: &GenerateOptions, out: &Path) -> io::Result<GenerateStats> {
    check(opts)?;
    fs::create_dir_all(out)?;
    for entry in fs::read_dir(out)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(REP_FILE_PREFIX) && name.ends_with(".yaml") {
            fs::remove_file(entry.path())?;
        }
    }
    let write = |name: &str, text: &str| -> io::Result<()> {
        let path: PathBuf = out.join(name);
        fs::write(&path, text)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
    };
    render_all(opts, &write)
}

/// The organization as (file name, text) pairs, in file order: for tests of small orgs.
pub fn generate_to_strings(opts: &GenerateOptions) -> io::Result<Vec<(String, String)>> {
    let files = std::sync::Mutex::new(Vec::new());
    let stats = render_all(opts, &|name, text| {
        files
            .lock()
            .expect("no panic while holding the lock")
            .push((name.to_string(), text.to_string()));
        Ok(())
    })?;
    let mut files = files.into_inner().expect("no panic while holding the lock");
    // Parallel rendering may deliver representative files out of order.
    files.sort_by_key(|(name, _)| {
        stats
            .files
            .iter()
            .position(|n| n == name)
            .unwrap_or(usize::MAX)
    });
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn small() -> GenerateOptions {
        GenerateOptions {
            representatives: 700,
            teams: 40,
            managers: 12,
            portals: 6,
            seed: 7,
            per_file: 250,
        }
    }

    fn values<'a>(files: &'a [(String, String)], key: &str) -> Vec<&'a str> {
        let prefix = format!("  - {key}: ");
        files
            .iter()
            .flat_map(|(_, text)| text.lines())
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = generate_to_strings(&small()).unwrap();
        let b = generate_to_strings(&small()).unwrap();
        assert_eq!(a, b);
        let c = generate_to_strings(&GenerateOptions { seed: 8, ..small() }).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn disk_output_equals_memory_output() {
        let dir = tempfile::tempdir().unwrap();
        // A stale file of a bigger earlier run must disappear.
        fs::write(dir.path().join("representatives-0099.yaml"), "x").unwrap();
        let stats = generate(&small(), dir.path()).unwrap();
        let mem = generate_to_strings(&small()).unwrap();
        assert_eq!(stats.files.len(), mem.len());
        assert!(!dir.path().join("representatives-0099.yaml").exists());
        let mut total = 0;
        for (name, text) in &mem {
            assert_eq!(&fs::read_to_string(dir.path().join(name)).unwrap(), text);
            total += text.len() as u64;
        }
        assert_eq!(stats.bytes, total);
    }

    #[test]
    fn counts_are_right() {
        let files = generate_to_strings(&small()).unwrap();
        let stats_files: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            stats_files
                .iter()
                .filter(|n| n.starts_with(REP_FILE_PREFIX))
                .count(),
            3,
            "700 representatives at 250 per file"
        );
        // Portals and campaigns use `name`; teams use `name` at every depth.
        let portals = files
            .iter()
            .find(|(n, _)| n == "portals.yaml")
            .unwrap()
            .1
            .matches("\n  - name: ")
            .count();
        assert_eq!(portals, 6);
        let teams = files
            .iter()
            .find(|(n, _)| n == "teams.yaml")
            .unwrap()
            .1
            .matches("- name: ")
            .count();
        assert_eq!(teams, 40);
        let logins = values(&files, "login");
        assert_eq!(logins.len(), 700 + 12 + 2);
        let stats = generate(&small(), tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(stats.representatives, 700);
        assert!(stats.active_representatives > 600 && stats.active_representatives < 700);
    }

    #[test]
    fn logins_and_usernames_are_unique() {
        let opts = GenerateOptions {
            representatives: 5000,
            ..small()
        };
        let files = generate_to_strings(&opts).unwrap();
        let logins = values(&files, "login");
        let set: BTreeSet<&str> = logins.iter().copied().collect();
        assert_eq!(set.len(), logins.len(), "duplicate login");
        assert!(logins.iter().all(|l| *l == l.to_lowercase()));
        let usernames: Vec<&str> = files
            .iter()
            .flat_map(|(_, t)| t.lines())
            .filter_map(|l| l.strip_prefix("    username: "))
            .collect();
        assert!(!usernames.is_empty());
        let set: BTreeSet<&str> = usernames.iter().copied().collect();
        assert_eq!(set.len(), usernames.len(), "duplicate declared username");
        assert!(usernames.iter().all(|u| u.contains('_')));
    }

    #[test]
    fn team_paths_are_unique_and_three_levels_deep() {
        let t = tree(5000);
        let set: BTreeSet<&String> = t.paths.iter().collect();
        assert_eq!(set.len(), 5000);
        let depth = t.paths.iter().map(|p| p.matches('/').count()).max();
        assert_eq!(depth, Some(2));
        for (i, p) in t.parent.iter().enumerate() {
            if let Some(p) = p {
                assert!(*p < i, "parent before child");
            }
        }
        assert_eq!(tree(1).paths, vec!["Europe".to_string()]);
    }

    #[test]
    fn session_features_come_from_the_reps_portals() {
        let opts = small();
        let files = generate_to_strings(&opts).unwrap();
        let portals: BTreeMap<String, Vec<Feature>> = (0..opts.portals)
            .map(|i| {
                let p = portal(&opts, i);
                (p.name, p.features)
            })
            .collect();
        let mut checked = 0;
        for (_, text) in files.iter().filter(|(n, _)| n.starts_with(REP_FILE_PREFIX)) {
            for rep in text.split("\n  - ").skip(1) {
                let field = |k: &str| {
                    rep.lines()
                        .find_map(|l| l.trim().strip_prefix(&format!("{k}: ")))
                        .map(|v| {
                            v.trim_matches(|c| c == '[' || c == ']')
                                .split(", ")
                                .map(str::to_string)
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                };
                let enabled: Vec<Feature> = field("portals")
                    .iter()
                    .flat_map(|p| portals[p].clone())
                    .collect();
                for f in field("features") {
                    let f = Feature::from_id(&f).unwrap();
                    if PORTAL_FEATURES.contains(&f) {
                        assert!(enabled.contains(&f), "{f} without a portal in {rep}");
                        checked += 1;
                    }
                }
                let feats = field("features");
                let has = |x: &str| feats.iter().any(|f| f == x);
                assert!(!has("reports") || has("admin_center_access"));
                assert!(!has("session_replay") || has("admin_center_access"));
                assert!(!has("export_session_replay") || has("session_replay"));
                if !field("multisession").is_empty() {
                    assert!(enabled.contains(&Feature::Multisession));
                }
            }
        }
        assert!(checked > 100);
    }

    #[test]
    fn scalars_quote_what_yaml_would_misread() {
        assert_eq!(scalar("Paris"), "Paris");
        assert_eq!(scalar("Kraków/Billing-0001"), "Kraków/Billing-0001");
        assert_eq!(scalar("2026-11"), "\"2026-11\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("-x"), "\"-x\"");
        assert_eq!(scalar(""), "\"\"");
    }

    fn load_clean(dir: &Path) -> crate::model::Desired {
        let loaded = match crate::config::load(&[dir.to_path_buf()]) {
            Ok(l) => l,
            Err(e) => panic!("{} does not load: {:#?}", dir.display(), e.0),
        };
        assert!(
            loaded.warnings.is_empty(),
            "{} has warnings: {:#?}",
            dir.display(),
            loaded.warnings
        );
        loaded.desired
    }

    #[test]
    fn a_generated_org_loads_with_no_error_and_no_warning() {
        let opts = GenerateOptions {
            representatives: 2000,
            teams: 120,
            managers: 30,
            portals: 7,
            seed: 3,
            per_file: 600,
        };
        let dir = tempfile::tempdir().unwrap();
        let stats = generate(&opts, dir.path()).unwrap();
        let desired = load_clean(dir.path());
        let org = &desired.org;
        assert_eq!(org.representatives.len(), 2000);
        assert_eq!(org.teams.len(), 120);
        assert_eq!(org.managers.len(), 30);
        assert_eq!(org.portals.len(), 7);
        assert_eq!(org.administrators.len(), 2);
        assert_eq!(org.campaigns.len(), stats.campaigns);
        assert_eq!(org.contact_groups.len(), stats.contact_groups);
        assert_eq!(org.active_representatives(), stats.active_representatives);
        let leaders = org.teams.values().filter(|t| t.leader.is_some()).count();
        assert!(leaders > 60, "most teams have a leader: {leaders}");
    }

    /// The README's quick start applies `examples/acme`; it must stay clean.
    #[test]
    fn the_acme_example_loads_with_no_error_and_no_warning() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme");
        let desired = load_clean(&dir);
        let org = &desired.org;
        assert_eq!(org.portals.len(), 4);
        assert_eq!(org.teams.len(), 8);
        assert_eq!(org.administrators.len(), 2);
        assert_eq!(org.managers.len(), 5);
        assert_eq!(org.representatives.len(), 32);
        assert_eq!(org.campaigns.len(), 3);
        assert_eq!(org.contact_groups.len(), 3);
        // Rule 2's exception is exercised: a manager shares a login with a representative
        // who has no Admin Center access.
        let marie = "marie.curie@acme.example";
        assert!(org.managers.contains_key(marie) && org.representatives.contains_key(marie));
        let username = |l: &str| org.representatives[l].username.clone().unwrap_or_default();
        assert_eq!(username("adam.nowak@acme.example"), "anowak");
        assert_eq!(username("anna.nowak@acme.example"), "anowak2");
        assert_eq!(username("lea.dubois@acme.example"), "ldubois");
        assert_eq!(username("emily.davis@acme.example"), "emily.davis");
    }

    #[test]
    fn bad_options_are_refused_with_the_flag_name() {
        let err = generate_to_strings(&GenerateOptions {
            teams: 0,
            ..small()
        })
        .unwrap_err();
        assert!(err.to_string().contains("--teams"));
    }
}
