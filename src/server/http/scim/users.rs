//! Employees as SCIM sees them (RFC 7643 User resources), and the
//! provisioning changes: create, replace or patch, deactivate, delete. Each
//! change and its audit event commit together.

use super::{not_found, parse_body, respond, Failure};
use crate::domain::actions::Action;
use crate::domain::{
    audit::{NewEvent, Outcome},
    grants as rules,
    scim::{self, Filter, ScimError, UserFields},
    Millis,
};
use crate::server::{
    access::{grants, people, service_accounts::ServicePrincipal},
    audit,
    identity::accounts,
    platform::{
        db::{opt_text, text, WriteTx},
        request::RequestCtx,
    },
    state::AppState,
};
use axum::{
    body::Bytes,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};
use sqlx::Row;

/// An employee as SCIM sees them.
pub(super) struct Stored {
    id: i64,
    fields: UserFields,
    status: String,
    created: Millis,
    updated: Millis,
}

pub(super) const COLS: &str = "id, email, display_name, department, status, scim_external_id, created_at, updated_at";

pub(super) fn stored(r: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    let status = text(r, "status")?;
    Ok(Stored {
        id: r.try_get("id")?,
        fields: UserFields {
            email: text(r, "email")?,
            name: text(r, "display_name")?,
            department: text(r, "department")?,
            // Suspension is Gatehouse's own, temporary measure; to the
            // provider the employee is still there until offboarded.
            active: status != "offboarded",
            external_id: opt_text(r, "scim_external_id")?,
        },
        status,
        created: r.try_get("created_at")?,
        updated: r.try_get("updated_at")?,
    })
}

/// The employee with this SCIM id, unless the provider deleted them.
pub(super) async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Stored>, sqlx::Error> {
    let Ok(id) = id.parse::<i64>() else { return Ok(None) };
    let sql = format!("SELECT {COLS} FROM users WHERE id = ? AND scim_deleted_at IS NULL");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}

pub(super) fn rfc3339(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub(super) fn location(st: &AppState, id: i64) -> String {
    let mut url = st.config.public_url.clone();
    url.set_path(&format!("/scim/v2/Users/{id}"));
    url.to_string()
}

pub(super) fn resource(st: &AppState, u: &Stored) -> Value {
    let f = &u.fields;
    let mut v = json!({
        "schemas": [scim::USER_SCHEMA, scim::ENTERPRISE_SCHEMA],
        "id": u.id.to_string(),
        "userName": f.email,
        "displayName": f.name,
        "name": { "formatted": f.name },
        "emails": [{ "value": f.email, "type": "work", "primary": true }],
        "active": f.active,
        scim::ENTERPRISE_SCHEMA: { "department": f.department },
        "meta": {
            "resourceType": "User",
            "created": rfc3339(u.created),
            "lastModified": rfc3339(u.updated),
            "location": location(st, u.id),
        },
    });
    if let Some(x) = &f.external_id {
        v["externalId"] = json!(x);
    }
    v
}

pub(super) async fn list(st: &AppState, filter: Option<Filter>, start: i64, count: i64) -> Result<Value, sqlx::Error> {
    let (clause, arg) = match &filter {
        // userName is case-insensitive (RFC 7643 4.1.1); emails are stored lower-cased.
        Some(Filter::UserName(v)) => (" AND email = ?", Some(v.trim().to_lowercase())),
        Some(Filter::ExternalId(v)) => (" AND scim_external_id = ?", Some(v.clone())),
        None => ("", None),
    };
    let total_sql = format!("SELECT COUNT(*) AS n FROM users WHERE scim_deleted_at IS NULL{clause}");
    let page_sql =
        format!("SELECT {COLS} FROM users WHERE scim_deleted_at IS NULL{clause} ORDER BY id LIMIT ? OFFSET ?");
    let mut total = sqlx::query(&total_sql);
    let mut page = sqlx::query(&page_sql);
    if let Some(a) = &arg {
        total = total.bind(a.clone());
        page = page.bind(a.clone());
    }
    let total: i64 = total.fetch_one(st.db.pool()).await?.try_get("n")?;
    let rows = page.bind(count).bind(start - 1).fetch_all(st.db.pool()).await?;
    let items = rows
        .iter()
        .map(|r| stored(r).map(|u| resource(st, &u)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "schemas": [scim::LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    }))
}

pub(super) async fn email_taken(tx: &mut WriteTx, email: &str, except: Option<i64>) -> Result<bool, sqlx::Error> {
    Ok(accounts::by_email(tx.conn(), email)
        .await?
        .is_some_and(|u| Some(u.id) != except))
}

pub(super) fn taken() -> ScimError {
    ScimError {
        status: 409,
        scim_type: Some("uniqueness"),
        detail: "An employee with this userName (email) already exists.".into(),
    }
}

pub(super) async fn create(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    body: &Bytes,
) -> Result<Response, Failure> {
    let fields = scim::user_from_resource(&parse_body(body)?, None)?;
    if !fields.active {
        return Err(ScimError::bad(
            "invalidValue",
            "Create employees with active: true; setting active to false later offboards them.",
        )
        .into());
    }
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    if email_taken(&mut tx, &fields.email, None).await? {
        return Err(taken().into());
    }
    let id = accounts::insert(
        &mut tx,
        accounts::NewUser {
            email: &fields.email,
            display_name: &fields.name,
            department: &fields.department,
            password_hash: None,
            status: "invited",
            provisioned_by: accounts::Provisioning::Scim,
        },
        now,
    )
    .await?;
    accounts::set_external_id(&mut tx, id, fields.external_id.as_deref()).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::Onboarded, Outcome::Success, service.actor(ctx)).target("user", id).details(json!({
            "source": "scim",
            "service": service.name,
            "email": fields.email,
            "department": fields.department,
            "external_id": fields.external_id,
            "before": null,
            "after": { "status": "invited", "name": fields.name, "email": fields.email, "department": fields.department },
        }))],
    )
    .await?;
    let u = load(&mut tx, &id.to_string())
        .await?
        .ok_or_else(|| sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    let mut r = respond(StatusCode::CREATED, resource(st, &u));
    if let Ok(v) = HeaderValue::from_str(&location(st, id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

pub(super) async fn change(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    id: &str,
    new_fields: impl FnOnce(&UserFields) -> Result<UserFields, ScimError>,
) -> Result<Response, Failure> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    let current = load(&mut tx, id).await?.ok_or_else(not_found)?;
    let new = new_fields(&current.fields)?;
    let old = &current.fields;
    if current.status == "offboarded" && new.active {
        return Err(ScimError::bad(
            "mutability",
            "This employee has been offboarded and cannot be reactivated; create a new employee instead.",
        )
        .into());
    }
    if new.email != old.email && email_taken(&mut tx, &new.email, Some(current.id)).await? {
        return Err(taken().into());
    }
    let profile_changed = new.email != old.email
        || new.name != old.name
        || new.department != old.department
        || new.external_id != old.external_id;
    if profile_changed {
        let profile = accounts::Profile {
            email: &new.email,
            name: &new.name,
            department: &new.department,
            external_id: new.external_id.as_deref(),
        };
        accounts::update_profile(&mut tx, current.id, profile, now).await?;
        audit::append(
            &mut tx,
            now,
            vec![NewEvent::new(Action::Updated, Outcome::Success, service.actor(ctx)).target("user", current.id).details(json!({
                "source": "scim",
                "service": service.name,
                "before": { "name": old.name, "email": old.email, "department": old.department, "external_id": old.external_id },
                "after": { "name": new.name, "email": new.email, "department": new.department, "external_id": new.external_id },
            }))],
        )
        .await?;
    }
    if old.active && !new.active {
        deprovision(
            &mut tx,
            ctx,
            service,
            &current,
            "deactivated by the identity provider (SCIM)",
            now,
            st.config.offboard_revoke_tokens,
        )
        .await?;
    }
    let u = load(&mut tx, id).await?.ok_or_else(|| sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    Ok(respond(StatusCode::OK, resource(st, &u)))
}

/// The offboarding action's own work, unless the rules refuse (the last
/// active administrator is never offboarded from outside).
pub(super) async fn deprovision(
    tx: &mut WriteTx,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    u: &Stored,
    reason: &str,
    now: Millis,
    revoke_tokens: bool,
) -> Result<(), Failure> {
    let admins = grants::active_admin_ids(tx.conn(), now).await?;
    // A service is never the employee itself, so only the last-admin rule applies.
    if rules::is_last_admin(u.id, admins.contains(&u.id), admins.len()) {
        let e = ScimError {
            status: 409,
            scim_type: None,
            detail: "This is the last active administrator; Gatehouse keeps them until another administrator exists."
                .into(),
        };
        return Err(Failure::Refused(e, u.id, Action::Offboard));
    }
    let leaver = people::Leaver {
        user_id: u.id,
        status_before: &u.status,
        reason,
        revoke_tokens,
    };
    people::offboard_in(tx, &service.actor(ctx), None, leaver, now).await?;
    Ok(())
}

pub(super) async fn delete(
    st: &AppState,
    ctx: &RequestCtx,
    service: &ServicePrincipal,
    id: &str,
) -> Result<Response, Failure> {
    let now = st.clock.now();
    let mut tx = st.db.begin_write().await?;
    grants::lock_administrators(&mut tx).await?;
    let current = load(&mut tx, id).await?.ok_or_else(not_found)?;
    if current.status != "offboarded" {
        deprovision(
            &mut tx,
            ctx,
            service,
            &current,
            "deleted by the identity provider (SCIM)",
            now,
            st.config.offboard_revoke_tokens,
        )
        .await?;
    }
    accounts::mark_scim_deleted(&mut tx, current.id, now).await?;
    audit::append(
        &mut tx,
        now,
        vec![NewEvent::new(Action::ScimDeleted, Outcome::Success, service.actor(ctx))
            .target("user", current.id)
            .details(json!({ "source": "scim", "service": service.name }))],
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
