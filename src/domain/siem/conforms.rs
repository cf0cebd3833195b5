//! A check of a record against the OCSF class definitions in
//! docs/ocsf/1.2.0, written for the tests (the unit tests, and the
//! integration tests through `#[path]`), independent of `record`.

use serde_json::Value;

/// The class definitions extracted from OCSF 1.2.0 (docs/ocsf/1.2.0).
pub fn class_schema(uid: u64) -> Value {
    let text = match uid {
        3001 => include_str!("../../../docs/ocsf/1.2.0/3001_account_change.json"),
        3002 => include_str!("../../../docs/ocsf/1.2.0/3002_authentication.json"),
        3004 => include_str!("../../../docs/ocsf/1.2.0/3004_entity_management.json"),
        6003 => include_str!("../../../docs/ocsf/1.2.0/6003_api_activity.json"),
        other => panic!("class {other} is not one Gatehouse emits"),
    };
    serde_json::from_str(text).unwrap()
}

pub fn object_schema(name: &str) -> Option<Value> {
    let text = match name {
        "metadata" => include_str!("../../../docs/ocsf/1.2.0/objects/metadata.json"),
        "product" => include_str!("../../../docs/ocsf/1.2.0/objects/product.json"),
        "actor" => include_str!("../../../docs/ocsf/1.2.0/objects/actor.json"),
        "user" => include_str!("../../../docs/ocsf/1.2.0/objects/user.json"),
        "session" => include_str!("../../../docs/ocsf/1.2.0/objects/session.json"),
        "api" => include_str!("../../../docs/ocsf/1.2.0/objects/api.json"),
        "service" => include_str!("../../../docs/ocsf/1.2.0/objects/service.json"),
        "network_endpoint" => include_str!("../../../docs/ocsf/1.2.0/objects/network_endpoint.json"),
        "managed_entity" => include_str!("../../../docs/ocsf/1.2.0/objects/managed_entity.json"),
        "http_request" => include_str!("../../../docs/ocsf/1.2.0/objects/http_request.json"),
        // `unmapped` is a free-form object by definition.
        "object" => return None,
        _ => panic!("object {name} is emitted but not extracted into docs/ocsf/1.2.0/objects"),
    };
    Some(serde_json::from_str(text).unwrap())
}

/// Checks `value` against a resolved definition: every attribute defined,
/// every required one present, scalar types and enumerations respected,
/// `at_least_one` constraints met, objects checked the same way.
pub fn conforms(value: &Value, schema: &Value, path: &str) -> Result<(), String> {
    let attrs = schema["attributes"].as_object().unwrap();
    let obj = value.as_object().ok_or(format!("{path}: not an object"))?;
    for (name, def) in attrs {
        if def["requirement"] == "required" && !obj.contains_key(name) {
            return Err(format!("{path}.{name}: required and missing"));
        }
    }
    if let Some(any) = schema["constraints"]["at_least_one"].as_array() {
        if !any.iter().any(|a| obj.contains_key(a.as_str().unwrap())) {
            return Err(format!("{path}: needs one of {any:?}"));
        }
    }
    for (name, v) in obj {
        let def = attrs
            .get(name)
            .ok_or(format!("{path}.{name}: not an attribute of {}", schema["name"]))?;
        let at = format!("{path}.{name}");
        let items: Vec<&Value> = if def["is_array"] == true {
            v.as_array().ok_or(format!("{at}: must be an array"))?.iter().collect()
        } else {
            vec![v]
        };
        for item in items {
            match def["type"].as_str().unwrap() {
                "object_t" => {
                    if let Some(s) = object_schema(def["object_type"].as_str().unwrap()) {
                        conforms(item, &s, &at)?;
                    } else if !item.is_object() {
                        return Err(format!("{at}: must be an object"));
                    }
                }
                "integer_t" | "long_t" | "timestamp_t" | "port_t" => {
                    if !item.is_i64() && !item.is_u64() {
                        return Err(format!("{at}: must be an integer"));
                    }
                }
                "boolean_t" => {
                    if !item.is_boolean() {
                        return Err(format!("{at}: must be a boolean"));
                    }
                }
                "json_t" => {}
                _ => {
                    if !item.is_string() {
                        return Err(format!("{at}: must be a string"));
                    }
                }
            }
            if let Some(allowed) = def["enum"].as_array() {
                if !allowed.contains(item) {
                    return Err(format!("{at}: {item} is not one of {allowed:?}"));
                }
            }
        }
    }
    Ok(())
}
