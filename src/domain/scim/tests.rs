//! Unit tests of `scim`.

use super::*;
use serde_json::json;

fn ada() -> UserFields {
    UserFields {
        email: "ada@x.example".into(),
        name: "Ada Lovelace".into(),
        department: "engineering".into(),
        active: true,
        external_id: Some("00u1".into()),
    }
}

fn patch(ops: Value) -> Value {
    json!({ "schemas": [PATCH_SCHEMA], "Operations": ops })
}

#[test]
fn filters_parse_case_insensitively_with_escapes() {
    assert_eq!(
        parse_filter(r#"userName eq "ada@x.example""#),
        Ok(Filter::UserName("ada@x.example".into()))
    );
    assert_eq!(
        parse_filter(r#"  USERNAME EQ "a\"b"  "#),
        Ok(Filter::UserName("a\"b".into()))
    );
    assert_eq!(
        parse_filter(r#"externalId eq "00u1""#),
        Ok(Filter::ExternalId("00u1".into()))
    );
    for bad in [
        r#"userName co "ada""#,
        r#"emails eq "a""#,
        "userName eq ada",
        r#"userName eq "a" and active eq true"#,
        "",
        "userName",
    ] {
        let e = parse_filter(bad).unwrap_err();
        assert_eq!((e.status, e.scim_type), (400, Some("invalidFilter")), "{bad}");
    }
}

#[test]
fn a_full_resource_reads_into_fields() {
    let u = user_from_resource(
        &json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "userName": "  Grace@X.Example ",
            "name": { "givenName": "Grace", "familyName": "Hopper" },
            "active": "True",
            "externalId": "00u9",
            "title": "ignored",
            ENTERPRISE_SCHEMA: { "department": "Support" }
        }),
        None,
    )
    .unwrap();
    assert_eq!(
        u,
        UserFields {
            email: "grace@x.example".into(),
            name: "Grace Hopper".into(),
            department: "support".into(),
            active: true,
            external_id: Some("00u9".into())
        }
    );
}

#[test]
fn a_resource_without_what_gatehouse_needs_is_refused() {
    let base = json!({ "userName": "g@x.example", "displayName": "G H", ENTERPRISE_SCHEMA: { "department": "sales" } });
    assert!(user_from_resource(&base, None).is_ok());
    let without = |k: &str| {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(k);
        v
    };
    assert!(user_from_resource(&without("userName"), None)
        .unwrap_err()
        .detail
        .contains("userName"));
    assert!(user_from_resource(&without("displayName"), None)
        .unwrap_err()
        .detail
        .contains("name"));
    assert!(user_from_resource(&without(ENTERPRISE_SCHEMA), None)
        .unwrap_err()
        .detail
        .contains("department"));
    // A PUT that leaves the department out keeps the current one.
    assert_eq!(
        user_from_resource(&without(ENTERPRISE_SCHEMA), Some(&ada()))
            .unwrap()
            .department,
        "engineering"
    );
    let mut bad_dept = base.clone();
    bad_dept[ENTERPRISE_SCHEMA]["department"] = json!("Marketing");
    assert_eq!(
        user_from_resource(&bad_dept, None).unwrap_err().scim_type,
        Some("invalidValue")
    );
    let mut bad_email = base.clone();
    bad_email["userName"] = json!("grace");
    assert!(user_from_resource(&bad_email, None)
        .unwrap_err()
        .detail
        .contains("email"));
    let mut wrong_schema = base.clone();
    wrong_schema["schemas"] = json!(["urn:example:Group"]);
    assert_eq!(
        user_from_resource(&wrong_schema, None).unwrap_err().scim_type,
        Some("invalidSyntax")
    );
    assert_eq!(
        user_from_resource(&json!([1]), None).unwrap_err().scim_type,
        Some("invalidSyntax")
    );
    let mut bad_active = base;
    bad_active["active"] = json!("no");
    assert!(user_from_resource(&bad_active, None)
        .unwrap_err()
        .detail
        .contains("active"));
}

#[test]
fn patch_deactivates_in_every_shape_providers_send() {
    for ops in [
        json!([{ "op": "replace", "path": "active", "value": false }]),
        json!([{ "op": "Replace", "path": "active", "value": "False" }]),
        json!([{ "op": "replace", "value": { "active": false } }]),
    ] {
        let u = apply_patch(&ada(), &patch(ops.clone())).unwrap();
        assert!(!u.active, "{ops}");
        assert_eq!(UserFields { active: true, ..u }, ada());
    }
}

#[test]
fn patch_changes_profile_attributes() {
    let u = apply_patch(
        &ada(),
        &patch(json!([
            { "op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada.king@x.example" },
            { "op": "replace", "path": "name.givenName", "value": "Augusta Ada" },
            { "op": "replace", "path": "name.familyName", "value": "King" },
            { "op": "add", "path": format!("{ENTERPRISE_SCHEMA}:department"), "value": "administration" },
            { "op": "replace", "path": "title", "value": "Countess" },
            { "op": "remove", "path": "externalId" }
        ])),
    )
    .unwrap();
    assert_eq!(
        u,
        UserFields {
            email: "ada.king@x.example".into(),
            name: "Augusta Ada King".into(),
            department: "administration".into(),
            active: true,
            external_id: None
        }
    );
    // displayName wins over the parts.
    let u = apply_patch(
        &ada(),
        &patch(json!([{ "op": "replace", "value": { "displayName": "Ada K", "name.givenName": "X" } }])),
    )
    .unwrap();
    assert_eq!(u.name, "Ada K");
}

#[test]
fn patch_refusals_name_the_problem() {
    let cases = [
        (
            json!([{ "op": "replace", "path": "name.givenName", "value": "Only" }]),
            "invalidValue",
        ),
        (
            json!([{ "op": "replace", "path": "userName", "value": "not-an-email" }]),
            "invalidValue",
        ),
        (
            json!([{ "op": "replace", "path": "favouriteColour", "value": "red" }]),
            "invalidPath",
        ),
        (json!([{ "op": "remove", "path": "userName" }]), "mutability"),
        (json!([{ "op": "remove" }]), "noTarget"),
        (
            json!([{ "op": "move", "path": "active", "value": true }]),
            "invalidSyntax",
        ),
        (json!([{ "op": "replace", "path": "active" }]), "invalidValue"),
        (json!([{ "op": "replace", "path": "id", "value": "7" }]), "mutability"),
        (json!([]), "invalidSyntax"),
    ];
    for (ops, scim_type) in cases {
        let e = apply_patch(&ada(), &patch(ops.clone())).unwrap_err();
        assert_eq!((e.status, e.scim_type), (400, Some(scim_type)), "{ops}: {}", e.detail);
    }
    let no_schema = json!({ "Operations": [{ "op": "replace", "path": "active", "value": false }] });
    assert_eq!(
        apply_patch(&ada(), &no_schema).unwrap_err().scim_type,
        Some("invalidSyntax")
    );
}
