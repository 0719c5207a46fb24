//! The one catalog of team rights, representative features and their dependency rules.
//!
//! Data, not code paths: validation (`config::rules`), the server (`server`), the JSON
//! Schema (`schemars` attributes in `model`) and the docs (`GET /v1/catalog`, README) all
//! read these tables, so a right added here is known everywhere at once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

macro_rules! catalog_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $id:literal : $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in catalog order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable snake_case identifier used in YAML, the API and the code.
            pub const fn id(self) -> &'static str {
                match self { $($name::$variant => $id),+ }
            }

            /// A short human label (the console's wording, in English).
            pub const fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            /// Parses a stable identifier.
            pub fn from_id(id: &str) -> Option<Self> {
                match id { $($id => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.id())
            }
        }
    };
}

catalog_enum! {
    /// A right a team manager holds over the teams assigned to them (seed 000, plus
    /// `manage_managers` from seed 002).
    TeamRight {
        ManageSubteams = "manage_subteams": "Add and remove sub-teams",
        ManageRepresentatives = "manage_representatives": "Add and remove representatives",
        EditRepNameLogin = "edit_rep_name_login": "Change a representative's name and login",
        EditRepPassword = "edit_rep_password": "Change a representative's password",
        ScheduleReports = "schedule_reports": "Schedule reports",
        MonthlyReports = "monthly_reports": "Monthly reports",
        SessionReplay = "session_replay": "Session replay",
        ExportSessionReplay = "export_session_replay": "Export session replay",
        SetAutoResponses = "set_auto_responses": "Set auto-responses",
        DownloadPreinstallApp = "download_preinstall_app": "Download the pre-install application",
        CancelRequests = "cancel_requests": "Cancel requests",
        LogOutRepresentatives = "log_out_representatives": "Log out representatives",
        SupervisorViewing = "supervisor_viewing": "Supervisor viewing",
        ConcurrentSessions = "concurrent_sessions": "Concurrent sessions",
        ResetPortalReports = "reset_portal_reports": "Reset portal reports",
        ManageBusinessHours = "manage_business_hours": "Manage business hours",
        ManageManagers = "manage_managers": "Add managers inside one's own teams, with at most one's own rights",
    }
}

catalog_enum! {
    /// A representative feature (seed 001). `multisession` is a count (1–10) held in the
    /// representative's `multisession` field; in sets (`grantable`, portal features) it
    /// stands for "more than one session at once".
    Feature {
        AdminCenterAccess = "admin_center_access": "Admin Center access",
        RestartReconnect = "restart_reconnect": "Restart / reconnect",
        Reports = "reports": "Reports",
        ScheduleReports = "schedule_reports": "Schedule reports",
        SaveAlertConfig = "save_alert_config": "Save alert configuration",
        SessionReplay = "session_replay": "Session replay",
        ExportSessionReplay = "export_session_replay": "Export session replay",
        FileTransferSend = "file_transfer_send": "File transfer: send",
        FileTransferReceive = "file_transfer_receive": "File transfer: receive",
        AllowSaveLoginPassword = "allow_save_login_password": "Allow saving the login password",
        ShareMyScreen = "share_my_screen": "Share my screen",
        ViewControlOtherScreens = "view_control_other_screens": "View / control other screens",
        Multisession = "multisession": "Multi-session",
    }
}

catalog_enum! {
    /// A representative's login setting (seed 001).
    SignInSetting {
        ForcePasswordChange = "force_password_change": "Force password change at next login",
        SelfServicePasswordReset = "self_service_password_reset": "User-initiated password reset",
        ForceEmailValidation = "force_email_validation": "Force e-mail validation prompt",
    }
}

/// The six session features a portal governs; a portal's `features` holds only these.
pub const PORTAL_FEATURES: &[Feature] = &[
    Feature::RestartReconnect,
    Feature::FileTransferSend,
    Feature::FileTransferReceive,
    Feature::ShareMyScreen,
    Feature::ViewControlOtherScreens,
    Feature::Multisession,
];

/// The ten features a manager may be allowed to grant (seed 000).
pub const GRANTABLE_FEATURES: &[Feature] = &[
    Feature::AdminCenterAccess,
    Feature::RestartReconnect,
    Feature::Reports,
    Feature::Multisession,
    Feature::ShareMyScreen,
    Feature::SessionReplay,
    Feature::ExportSessionReplay,
    Feature::FileTransferSend,
    Feature::FileTransferReceive,
    Feature::ViewControlOtherScreens,
];

/// The features listed in a representative's `features` (all but `multisession`, which
/// is the separate count field).
pub fn representative_features() -> impl Iterator<Item = Feature> {
    Feature::ALL
        .iter()
        .copied()
        .filter(|f| *f != Feature::Multisession)
}

/// Rule 1: a feature that can be on only when another is on (seed 000's note).
/// Applies to representative features and to a manager's `grantable` set.
pub const FEATURE_REQUIRES: &[(Feature, Feature)] = &[
    (Feature::Reports, Feature::AdminCenterAccess),
    (Feature::SessionReplay, Feature::AdminCenterAccess),
    (Feature::ExportSessionReplay, Feature::SessionReplay),
];

/// Rule 1 for team rights: exporting session replays needs the replay right.
pub const RIGHT_REQUIRES: &[(TeamRight, TeamRight)] =
    &[(TeamRight::ExportSessionReplay, TeamRight::SessionReplay)];

/// Bounds of a representative's `multisession` count.
pub const MULTISESSION_MIN: u8 = 1;
pub const MULTISESSION_MAX: u8 = 10;

pub fn is_portal_feature(f: Feature) -> bool {
    PORTAL_FEATURES.contains(&f)
}

pub fn is_grantable(f: Feature) -> bool {
    GRANTABLE_FEATURES.contains(&f)
}

/// The catalog as served at `GET /v1/catalog` and shown in docs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CatalogDoc {
    pub team_rights: Vec<CatalogEntry>,
    pub features: Vec<CatalogEntry>,
    pub sign_in: Vec<CatalogEntry>,
    pub portal_features: Vec<String>,
    pub grantable_features: Vec<String>,
    pub feature_requires: Vec<Requirement>,
    pub right_requires: Vec<Requirement>,
    pub multisession: (u8, u8),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CatalogEntry {
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Requirement {
    pub feature: String,
    pub requires: String,
}

pub fn catalog_doc() -> CatalogDoc {
    fn entries<T: Copy>(
        all: &[T],
        id: fn(T) -> &'static str,
        label: fn(T) -> &'static str,
    ) -> Vec<CatalogEntry> {
        all.iter()
            .map(|x| CatalogEntry {
                id: id(*x).into(),
                label: label(*x).into(),
            })
            .collect()
    }
    CatalogDoc {
        team_rights: entries(TeamRight::ALL, TeamRight::id, TeamRight::label),
        features: entries(Feature::ALL, Feature::id, Feature::label),
        sign_in: entries(SignInSetting::ALL, SignInSetting::id, SignInSetting::label),
        portal_features: PORTAL_FEATURES.iter().map(|f| f.id().into()).collect(),
        grantable_features: GRANTABLE_FEATURES.iter().map(|f| f.id().into()).collect(),
        feature_requires: FEATURE_REQUIRES
            .iter()
            .map(|(a, b)| Requirement {
                feature: a.id().into(),
                requires: b.id().into(),
            })
            .collect(),
        right_requires: RIGHT_REQUIRES
            .iter()
            .map(|(a, b)| Requirement {
                feature: a.id().into(),
                requires: b.id().into(),
            })
            .collect(),
        multisession: (MULTISESSION_MIN, MULTISESSION_MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_the_seed_pages() {
        assert_eq!(
            TeamRight::ALL.len(),
            17,
            "16 team rights of seed 000 plus manage_managers"
        );
        assert_eq!(Feature::ALL.len(), 13);
        assert_eq!(GRANTABLE_FEATURES.len(), 10);
        assert_eq!(PORTAL_FEATURES.len(), 6);
        assert_eq!(SignInSetting::ALL.len(), 3);
    }

    #[test]
    fn ids_round_trip_through_serde() {
        for r in TeamRight::ALL {
            let s = serde_json::to_string(r).unwrap();
            assert_eq!(s, format!("\"{}\"", r.id()));
            assert_eq!(TeamRight::from_id(r.id()), Some(*r));
        }
        for f in Feature::ALL {
            let s = serde_json::to_string(f).unwrap();
            assert_eq!(s, format!("\"{}\"", f.id()));
        }
    }

    #[test]
    fn requirements_stay_inside_their_sets() {
        for (a, b) in FEATURE_REQUIRES {
            assert_ne!(a, b);
        }
        assert!(GRANTABLE_FEATURES.iter().all(|f| Feature::ALL.contains(f)));
    }
}
