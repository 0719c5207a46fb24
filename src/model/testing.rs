//! Test builders of model objects, so that a unit test names only the fields it is about
//! and survives a new field. Used by the unit tests of `config` and `ops`.

use super::{Representative, SignIn, Status};

/// A representative `login` (its e-mail too), named John Doe, active, with one session,
/// no team, features or portals; `team` when given. Chain the setters for the rest.
pub fn rep(login: &str, team: Option<&str>) -> Representative {
    Representative {
        login: login.into(),
        email: login.into(),
        first_name: "John".into(),
        last_name: "Doe".into(),
        username: None,
        language: "en".into(),
        team: team.map(str::to_string),
        status: Status::Active,
        sign_in: SignIn::default(),
        features: Default::default(),
        multisession: 1,
        portals: Default::default(),
        support_management: true,
        remote_management: false,
        password: None,
        protect: false,
        previously: None,
    }
}

impl Representative {
    pub fn with_email(mut self, email: &str) -> Self {
        self.email = email.into();
        self
    }

    pub fn with_names(mut self, first: &str, last: &str) -> Self {
        self.first_name = first.into();
        self.last_name = last.into();
        self
    }

    pub fn with_username(mut self, username: &str) -> Self {
        self.username = Some(username.into());
        self
    }
}
