//! `GET /api/v1/openapi.json`: the API's description.

use crate::domain::permissions::Permission;
use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

/// `GET /api/v1/openapi.json`: the API's description.
pub async fn openapi() -> Response {
    let error = json!({ "type": "object", "properties": { "error": { "type": "string" }, "request_id": { "type": "string" } } });
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "Gatehouse API", "version": "1" },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A service-account token (ghs_…)" },
                "session": { "type": "apiKey", "in": "cookie", "name": "gatehouse", "description": "A signed-in browser session (auditors)" }
            },
            "schemas": {
                "Error": error,
                "AccessCheck": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["employee", "permission", "resource"],
                    "properties": {
                        "employee": { "oneOf": [{ "type": "integer", "minimum": 1 }, { "type": "string", "format": "email" }] },
                        "permission": { "type": "string", "enum": Permission::ALL.iter().map(|p| p.id()).collect::<Vec<_>>() },
                        "resource": {
                            "type": "object", "additionalProperties": false, "required": ["type", "id"],
                            "properties": { "type": { "type": "string", "pattern": "^[a-z0-9_.-]{1,64}$" }, "id": { "type": "string", "maxLength": 128 } }
                        },
                        "customer_id": { "type": "string", "maxLength": 128 },
                        "purpose": { "type": "string", "maxLength": 500 }
                    }
                },
                "Decision": {
                    "type": "object",
                    "properties": {
                        "decision": { "type": "string", "enum": ["allow", "deny"] },
                        "reason": { "type": "string" },
                        "grant": { "type": ["object", "null"], "properties": { "id": { "type": "integer" }, "role": { "type": "string" }, "expires_at": { "type": ["integer", "null"], "description": "milliseconds since the Unix epoch" } } },
                        "employee_id": { "type": ["integer", "null"] },
                        "audit_seq": { "type": ["integer", "null"], "description": "the audit event recording this check, when one was written" },
                        "request_id": { "type": "string" }
                    }
                }
            }
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/audit-events": {
                "post": {
                    "summary": "Report up to 1,000 customer-data access events from another system (scope events:write). The batch is validated whole and stored whole or not at all; errors name the event index and field. With an Idempotency-Key header a retried batch is stored once (same key, different batch: 409).",
                    "parameters": [{ "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "maxLength": 128 } }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false, "required": ["events"],
                        "properties": { "events": { "type": "array", "minItems": 1, "maxItems": 1000, "items": {
                            "type": "object", "additionalProperties": false,
                            "required": ["employee", "action", "customer_id", "source_system", "occurred_at"],
                            "properties": {
                                "employee": { "oneOf": [{ "type": "integer", "minimum": 1 }, { "type": "string", "format": "email" }] },
                                "action": { "type": "string", "pattern": "^[a-z0-9_.:-]{1,64}$" },
                                "customer_id": { "type": "string", "maxLength": 128 },
                                "fields": { "type": "array", "maxItems": 100, "items": { "type": "string" } },
                                "record_types": { "type": "array", "maxItems": 20, "items": { "type": "string" } },
                                "purpose": { "type": "string", "maxLength": 500 },
                                "source_system": { "type": "string", "pattern": "^[a-z0-9_.:-]{1,64}$" },
                                "occurred_at": { "type": "string", "format": "date-time", "description": "at most 5 minutes in the future" },
                                "grant_id": { "type": "integer", "minimum": 1, "description": "the grant named by the access check that allowed it; must be a grant of this employee" }
                            }
                        } } }
                    } } } },
                    "responses": {
                        "201": { "description": "Stored: accepted, first_seq, last_seq" },
                        "200": { "description": "A retry of a stored batch (replayed: true)" },
                        "401": { "description": "No valid token" }, "403": { "description": "The token lacks the events:write scope" },
                        "409": { "description": "The Idempotency-Key was used for a different batch" },
                        "413": { "description": "Body over 2 MiB" }, "415": { "description": "Not application/json" },
                        "422": { "description": "An event is invalid; the message names its index and field" }
                    }
                }
            },
            "/api/v1/access-checks": {
                "post": {
                    "summary": "May an employee use a permission now? Denies, and checks naming a customer, are recorded in the audit trail.",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AccessCheck" } } } },
                    "responses": {
                        "200": { "description": "The decision", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Decision" } } } },
                        "400": { "description": "Not JSON", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "401": { "description": "No valid token", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "403": { "description": "The token lacks the access:check scope", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                        "413": { "description": "Body too large" },
                        "415": { "description": "Not application/json" },
                        "422": { "description": "A field is missing, unknown or invalid; the message names it", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                    }
                }
            },
            "/api/v1/audit/public-key": {
                "get": {
                    "summary": "The Ed25519 public keys that sign audit checkpoints (hex). Public: no authentication.",
                    "security": [],
                    "responses": { "200": { "description": "algorithm, signed_format, current_key_id, keys[{key_id, public_key, created_at}]" } }
                }
            },
            "/api/v1/audit/checkpoints": {
                "get": {
                    "summary": "Signed checkpoints in order (signed-in employee with audit:read). Each names tree_size, the RFC 6962 Merkle root over events 1..tree_size, the head hash, the digest of the previous checkpoint, and signs signed_message.",
                    "security": [{ "session": [] }],
                    "parameters": [
                        { "name": "after", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 } },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 } }
                    ],
                    "responses": { "200": { "description": "checkpoints[]" }, "401": { "description": "Not signed in" }, "403": { "description": "No audit:read" }, "422": { "description": "limit out of range" } }
                }
            },
            "/api/v1/audit/proofs/{seq}": {
                "get": {
                    "summary": "An RFC 6962 inclusion proof that event seq is under the root of a checkpoint (default the latest), with the checkpoint (signed-in employee with audit:read).",
                    "security": [{ "session": [] }],
                    "parameters": [
                        { "name": "seq", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } },
                        { "name": "checkpoint", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1 } }
                    ],
                    "responses": { "200": { "description": "seq, leaf_index, event_hash, leaf_hash, tree_size, audit_path[], checkpoint" }, "404": { "description": "No such checkpoint, or it does not cover seq" } }
                }
            }
        }
    });
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-cache")], Json(doc)).into_response()
}
