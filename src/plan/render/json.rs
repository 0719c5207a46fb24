//! The JSON rendering: the stable saved-plan document (`plan --out`, `--format json`)
//! and its JSON Schema (`schemas/plan.schema.json`, draft 2020-12).

use crate::plan::Plan;

/// The plan as pretty JSON, ending with a newline. `apply` reads it back with serde.
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("a plan always serializes");
    s.push('\n');
    s
}

/// The JSON Schema of the saved plan (what `schemas/plan.schema.json` holds).
pub fn schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in schema is current. To refresh it after changing the plan types:
    /// `ROSTER_UPDATE_SCHEMAS=1 cargo test --lib plan::render::json`.
    #[test]
    fn checked_in_plan_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/plan.schema.json");
        let fresh = schema();
        if std::env::var_os("ROSTER_UPDATE_SCHEMAS").is_some() {
            std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas")).unwrap();
            std::fs::write(path, &fresh).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == fresh,
            "schemas/plan.schema.json is out of date; run \
             `ROSTER_UPDATE_SCHEMAS=1 cargo test --lib plan::render::json`"
        );
        let v: serde_json::Value = serde_json::from_str(&fresh).unwrap();
        assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    }
}
