//! SCIM 2.0 provisioning (RFC 7643 / RFC 7644), as far as Gatehouse takes
//! it: the identity provider creates employees, changes their name, email
//! and department, and deactivates them (which offboards). This module reads
//! SCIM documents into the fields Gatehouse keeps; it knows nothing of HTTP
//! or storage.

use super::grants::DEPARTMENTS;
use super::validation::{Email, PersonName};
use serde_json::{Map, Value};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Largest page a list returns (RFC 7644 3.4.2.4 lets the server cap it).
pub const MAX_PAGE: usize = 200;

/// A SCIM error: HTTP status, the RFC 7644 `scimType` where one applies,
/// and a message for the provider's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }
}

/// What SCIM can set on an employee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFields {
    pub email: String,
    pub name: String,
    pub department: String,
    pub active: bool,
    pub external_id: Option<String>,
}

/// The filters a provider uses to find an employee before creating one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    UserName(String),
    ExternalId(String),
}

/// Parses `userName eq "…"` or `externalId eq "…"` (attribute names and
/// the operator are case-insensitive, RFC 7644 3.4.2.2). Anything else is
/// an `invalidFilter` error naming what is supported.
pub fn parse_filter(input: &str) -> Result<Filter, ScimError> {
    let unsupported = || {
        ScimError::bad(
            "invalidFilter",
            "Only the filters userName eq \"…\" and externalId eq \"…\" are supported.",
        )
    };
    let s = input.trim();
    let (attr, rest) = s.split_once(char::is_whitespace).ok_or_else(unsupported)?;
    let (op, value) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(unsupported)?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(unsupported());
    }
    let value = parse_string_literal(value.trim())
        .ok_or_else(|| ScimError::bad("invalidFilter", "The filter value must be a quoted string."))?;
    match attr.to_ascii_lowercase().as_str() {
        "username" | "urn:ietf:params:scim:schemas:core:2.0:user:username" => Ok(Filter::UserName(value)),
        "externalid" => Ok(Filter::ExternalId(value)),
        _ => Err(unsupported()),
    }
}

/// A JSON string literal, the whole input.
fn parse_string_literal(s: &str) -> Option<String> {
    if !s.starts_with('"') || s.len() < 2 {
        return None;
    }
    match serde_json::from_str::<Value>(s).ok()? {
        Value::String(v) => Some(v),
        _ => None,
    }
}

/// Maps a department as providers send it ("Engineering", "support") to
/// one of Gatehouse's departments.
pub fn department(input: &str) -> Result<String, ScimError> {
    let d = input.trim().to_ascii_lowercase();
    DEPARTMENTS
        .iter()
        .find(|x| **x == d)
        .map(|x| (*x).to_owned())
        .ok_or_else(|| {
            ScimError::bad(
                "invalidValue",
                format!("department must be one of: {}.", DEPARTMENTS.join(", ")),
            )
        })
}

fn email(input: &str) -> Result<String, ScimError> {
    Email::parse(input).map(|e| e.as_str().to_owned()).map_err(|e| {
        ScimError::bad(
            "invalidValue",
            format!("userName: {e} (it must be the employee's email address)"),
        )
    })
}

fn person_name(input: &str) -> Result<String, ScimError> {
    PersonName::parse(input)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| ScimError::bad("invalidValue", e.to_string()))
}

fn external_id(v: &Value) -> Result<Option<String>, ScimError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s.chars().count() <= 255 && !s.chars().any(char::is_control) => Ok(Some(s.clone())),
        _ => Err(ScimError::bad(
            "invalidValue",
            "externalId must be a string of at most 255 printable characters.",
        )),
    }
}

/// `active` as a boolean; some providers (Microsoft Entra) send the
/// strings "True" and "False".
fn boolean(v: &Value, attr: &str) -> Result<bool, ScimError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::bad("invalidValue", format!("{attr} must be true or false."))),
    }
}

fn string<'a>(v: &'a Value, attr: &str) -> Result<&'a str, ScimError> {
    v.as_str()
        .ok_or_else(|| ScimError::bad("invalidValue", format!("{attr} must be a string.")))
}

/// Looks a key up case-insensitively (SCIM attribute names are).
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// The name a resource carries: `displayName`, else `name.formatted`, else
/// `name.givenName` and `name.familyName` together.
fn name_of(obj: &Map<String, Value>) -> Result<Option<String>, ScimError> {
    if let Some(v) = get(obj, "displayName") {
        return person_name(string(v, "displayName")?).map(Some);
    }
    let Some(name) = get(obj, "name") else { return Ok(None) };
    let name = name
        .as_object()
        .ok_or_else(|| ScimError::bad("invalidValue", "name must be an object."))?;
    if let Some(v) = get(name, "formatted") {
        return person_name(string(v, "name.formatted")?).map(Some);
    }
    let given = get(name, "givenName")
        .map(|v| string(v, "name.givenName"))
        .transpose()?;
    let family = get(name, "familyName")
        .map(|v| string(v, "name.familyName"))
        .transpose()?;
    let joined = [given, family]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if joined.is_empty() {
        Ok(None)
    } else {
        person_name(&joined).map(Some)
    }
}

/// The enterprise extension's department, if sent.
fn department_of(obj: &Map<String, Value>) -> Result<Option<String>, ScimError> {
    match get(obj, ENTERPRISE_SCHEMA) {
        None => Ok(None),
        Some(Value::Object(ext)) => get(ext, "department")
            .map(|v| department(string(v, "department")?))
            .transpose(),
        Some(_) => Err(ScimError::bad(
            "invalidValue",
            format!("{ENTERPRISE_SCHEMA} must be an object."),
        )),
    }
}

/// Reads a full User resource (POST, PUT). `current` is the employee a PUT
/// replaces: a PUT that leaves out the department keeps it, as providers
/// that do not manage departments never send one.
pub fn user_from_resource(body: &Value, current: Option<&UserFields>) -> Result<UserFields, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::bad("invalidSyntax", "The body must be a JSON object."))?;
    if let Some(schemas) = get(obj, "schemas") {
        let listed = schemas
            .as_array()
            .map(|a| a.iter().any(|s| s.as_str() == Some(USER_SCHEMA)))
            .unwrap_or(false);
        if !listed {
            return Err(ScimError::bad(
                "invalidSyntax",
                format!("schemas must include {USER_SCHEMA}."),
            ));
        }
    }
    let user_name = get(obj, "userName")
        .ok_or_else(|| ScimError::bad("invalidValue", "userName (the employee's email address) is required."))?;
    let email = email(string(user_name, "userName")?)?;
    let name = name_of(obj)?.ok_or_else(|| {
        ScimError::bad(
            "invalidValue",
            "A name is required: displayName, name.formatted, or name.givenName and name.familyName.",
        )
    })?;
    let department = match (department_of(obj)?, current) {
        (Some(d), _) => d,
        (None, Some(c)) => c.department.clone(),
        (None, None) => {
            return Err(ScimError::bad(
                "invalidValue",
                format!(
                    "department is required (in {ENTERPRISE_SCHEMA}); one of: {}.",
                    DEPARTMENTS.join(", ")
                ),
            ))
        }
    };
    let active = get(obj, "active")
        .map(|v| boolean(v, "active"))
        .transpose()?
        .unwrap_or(true);
    let external_id = get(obj, "externalId").map(external_id).transpose()?.flatten();
    Ok(UserFields {
        email,
        name,
        department,
        active,
        external_id,
    })
}

/// Core and enterprise attributes Gatehouse does not keep. Providers send
/// them in every PATCH; they are accepted and ignored. Any other path is
/// an `invalidPath` error.
const IGNORED: &[&str] = &[
    "nickname",
    "profileurl",
    "title",
    "usertype",
    "preferredlanguage",
    "locale",
    "timezone",
    "password",
    "phonenumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509certificates",
    "name.middlename",
    "name.honorificprefix",
    "name.honorificsuffix",
    "employeenumber",
    "costcenter",
    "organization",
    "division",
    "manager",
];

fn ignored(path: &str) -> bool {
    let base = path.split(['[', '.']).next().unwrap_or(path).to_ascii_lowercase();
    let p = path.to_ascii_lowercase();
    IGNORED.contains(&p.as_str()) || IGNORED.contains(&base.as_str())
}

/// A PATCH in progress: the name parts are collected so that a patch that
/// changes given and family name together can compose the display name.
struct Patch {
    fields: UserFields,
    display: Option<String>,
    given: Option<String>,
    family: Option<String>,
}

/// Applies a PatchOp request (RFC 7644 3.5.2) to an employee's fields.
/// Supports `add` and `replace` of active, userName, displayName, name,
/// emails, externalId and the enterprise department, with or without a
/// path; `remove` of externalId. The result is validated as a whole.
pub fn apply_patch(current: &UserFields, body: &Value) -> Result<UserFields, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::bad("invalidSyntax", "The body must be a JSON object."))?;
    let schemas_ok = get(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(PATCH_SCHEMA)));
    if !schemas_ok {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("schemas must be [\"{PATCH_SCHEMA}\"]."),
        ));
    }
    let ops = get(obj, "Operations")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ScimError::bad("invalidSyntax", "Operations must be a non-empty array."))?;
    if ops.len() > 100 {
        return Err(ScimError::bad("tooMany", "At most 100 operations per request."));
    }
    let mut p = Patch {
        fields: current.clone(),
        display: None,
        given: None,
        family: None,
    };
    for (i, op) in ops.iter().enumerate() {
        let op = op
            .as_object()
            .ok_or_else(|| ScimError::bad("invalidSyntax", format!("Operations[{i}] must be an object.")))?;
        let kind = get(op, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let path = get(op, "path").map(|v| string(v, "path")).transpose()?;
        let value = get(op, "value");
        match (kind.as_str(), path) {
            ("add" | "replace", Some(path)) => {
                let value =
                    value.ok_or_else(|| ScimError::bad("invalidValue", format!("Operations[{i}] needs a value.")))?;
                set(&mut p, path, value)?;
            }
            ("add" | "replace", None) => {
                let value = value.and_then(Value::as_object).ok_or_else(|| {
                    ScimError::bad(
                        "invalidValue",
                        format!("Operations[{i}] without a path needs an object value."),
                    )
                })?;
                for (k, v) in value {
                    set(&mut p, k, v)?;
                }
            }
            ("remove", Some(path)) => {
                if path.eq_ignore_ascii_case("externalId") {
                    p.fields.external_id = None;
                } else if !ignored(path) {
                    return Err(ScimError::bad(
                        "mutability",
                        format!("{path} cannot be removed; Gatehouse requires it."),
                    ));
                }
            }
            ("remove", None) => {
                return Err(ScimError::bad(
                    "noTarget",
                    format!("Operations[{i}]: remove needs a path."),
                ))
            }
            _ => {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    format!("Operations[{i}].op must be add, replace or remove."),
                ))
            }
        }
    }
    let composed = [p.given.as_deref(), p.family.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    match (p.display, p.given.is_some() || p.family.is_some()) {
        (Some(name), _) => p.fields.name = name,
        (None, true) if p.given.is_some() && p.family.is_some() => p.fields.name = person_name(&composed)?,
        (None, true) => {
            return Err(ScimError::bad(
                "invalidValue",
                "Change name.givenName and name.familyName together, or send displayName.",
            ));
        }
        (None, false) => {}
    }
    Ok(p.fields)
}

/// One attribute of a PATCH.
fn set(p: &mut Patch, path: &str, value: &Value) -> Result<(), ScimError> {
    let lower = path.to_ascii_lowercase();
    let enterprise_prefix = format!("{}:", ENTERPRISE_SCHEMA.to_ascii_lowercase());
    match lower.as_str() {
        "active" => p.fields.active = boolean(value, "active")?,
        "username" => p.fields.email = email(string(value, "userName")?)?,
        "displayname" => p.display = Some(person_name(string(value, "displayName")?)?),
        "externalid" => p.fields.external_id = external_id(value)?,
        "name.formatted" => p.display = Some(person_name(string(value, "name.formatted")?)?),
        "name.givenname" => p.given = Some(string(value, "name.givenName")?.trim().to_owned()),
        "name.familyname" => p.family = Some(string(value, "name.familyName")?.trim().to_owned()),
        "name" => {
            let obj = value
                .as_object()
                .ok_or_else(|| ScimError::bad("invalidValue", "name must be an object."))?;
            for (k, v) in obj {
                set(p, &format!("name.{k}"), v)?;
            }
        }
        "emails" => {
            // The primary (else the first) work address becomes userName.
            let list = value
                .as_array()
                .ok_or_else(|| ScimError::bad("invalidValue", "emails must be an array."))?;
            let pick = list
                .iter()
                .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                .or_else(|| list.first());
            if let Some(v) = pick.and_then(|e| e.get("value")) {
                p.fields.email = email(string(v, "emails.value")?)?;
            }
        }
        "emails[type eq \"work\"].value" | "emails[primary eq true].value" => {
            p.fields.email = email(string(value, "emails.value")?)?
        }
        x if x == ENTERPRISE_SCHEMA.to_ascii_lowercase() => {
            let obj = value
                .as_object()
                .ok_or_else(|| ScimError::bad("invalidValue", format!("{ENTERPRISE_SCHEMA} must be an object.")))?;
            for (k, v) in obj {
                set(p, &format!("{ENTERPRISE_SCHEMA}:{k}"), v)?;
            }
        }
        x if x.starts_with(&enterprise_prefix) => {
            let attr = &x[enterprise_prefix.len()..];
            if attr == "department" {
                p.fields.department = department(string(value, "department")?)?;
            } else if !ignored(attr) {
                return Err(ScimError::bad(
                    "invalidPath",
                    format!("{path} is not an attribute Gatehouse supports."),
                ));
            }
        }
        "schemas" | "id" | "meta" => return Err(ScimError::bad("mutability", format!("{path} is read-only."))),
        _ if ignored(path) => {}
        _ => {
            return Err(ScimError::bad(
                "invalidPath",
                format!("{path} is not an attribute Gatehouse supports."),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
