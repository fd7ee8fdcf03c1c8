//! MQTT credentials of devices, and the same access rules as the embedded
//! broker's for an external broker, in the shape of EMQX's HTTP
//! authenticator and authorizer (see docs/deploy.md):
//! - `POST /api/v1/vehicles/{plate}/mqtt-credentials` (admin) -> 201
//!   `{"username","password"}`, the password shown this once;
//! - `POST /api/v1/mqtt/auth` `{"username","password","clientid"?}` -> 200
//!   `{"result":"allow"|"deny","is_superuser",...}`;
//! - `POST /api/v1/mqtt/acl` `{"username","topic","action","role"?}` -> 200
//!   `{"result":"allow"|"deny"}`.
//!
//! The auth and acl answers are always 200 with a `result`: EMQX treats any
//! other status as "ignore" (next authorizer, which may allow). They also
//! carry `ok` (mosquitto-go-auth's JSON response mode reads it).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState, Caller};
use crate::identity::Plate;
use crate::metrics::MqttRefusal;
use crate::mqtt_access::{hash_secret, new_secret, MqttClient, OFFICER_USERNAME};

pub async fn create_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Path(plate): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let unknown = || ApiError::not_found(format!("no vehicle `{plate}`"));
    let parsed = Plate::parse(&plate).map_err(|_| unknown())?;
    let vehicle = state.store.vehicle(&parsed).await?.ok_or_else(unknown)?;
    if vehicle.device_id.as_str() == OFFICER_USERNAME {
        return Err(ApiError::conflict(format!(
            "device id `{OFFICER_USERNAME}` is the username of officers' clients; \
             register the vehicle's terminal under another id"
        )));
    }
    let secret = new_secret()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let hash = hash_secret(&secret)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    state
        .store
        .set_mqtt_credential(
            &vehicle.device_id,
            &vehicle.plate,
            &hash,
            chrono::Utc::now().timestamp_millis(),
        )
        .await?;
    tracing::info!(plate = %vehicle.plate, device = %vehicle.device_id, "MQTT credentials issued (any earlier ones replaced)");
    Ok((
        StatusCode::CREATED,
        Json(json!({"username": vehicle.device_id.as_str(), "password": secret})),
    ))
}

#[derive(Deserialize)]
pub struct AuthRequest {
    username: Option<String>,
    password: Option<String>,
}

fn deny(detail: &str) -> Json<Value> {
    Json(json!({"result": "deny", "is_superuser": false, "ok": false, "error": detail}))
}

pub async fn auth(
    State(state): State<AppState>,
    body: Result<Json<AuthRequest>, JsonRejection>,
) -> Json<Value> {
    let Ok(Json(req)) = body else {
        state.metrics.mqtt_refused(MqttRefusal::Protocol);
        return deny("body is not {\"username\",\"password\"}");
    };
    // Whatever the embedded broker allows on loopback, an external broker
    // asking here gets no anonymous clients.
    let (Some(username), Some(password)) = (
        req.username.filter(|u| !u.is_empty()),
        req.password.filter(|p| !p.is_empty()),
    ) else {
        state.metrics.mqtt_refused(MqttRefusal::Anonymous);
        return deny("anonymous clients are refused");
    };
    match state.mqtt.check(&username, Some(&password)).await {
        Ok(client) => {
            let acl: Vec<Value> = state
                .mqtt
                .acl_rules(&client)
                .into_iter()
                .map(|(action, topic)| json!({"permission": "allow", "action": action, "topic": topic}))
                .chain(std::iter::once(
                    json!({"permission": "deny", "action": "all", "topic": "#"}),
                ))
                .collect();
            let role = match &client {
                MqttClient::Officer(r) => r.to_string(),
                MqttClient::Device(_) => "device".into(),
                MqttClient::Service => "service".into(),
                MqttClient::Anonymous => "anonymous".into(),
            };
            Json(json!({
                "result": "allow",
                "is_superuser": client == MqttClient::Service,
                "client_attrs": {"role": role},
                "acl": acl,
                "ok": true,
                "error": "",
            }))
        }
        Err(refused) => {
            state.metrics.mqtt_refused(refused.reason());
            deny(refused.reason().label())
        }
    }
}

#[derive(Deserialize)]
pub struct AclRequest {
    username: Option<String>,
    topic: Option<String>,
    /// `publish` or `subscribe` (EMQX); mosquitto-go-auth sends `acc`.
    action: Option<String>,
    /// mosquitto-go-auth: 1 read, 2 write, 3 read-write, 4 subscribe.
    acc: Option<u8>,
    /// EMQX `${client_attrs.role}`, as the auth answer set it.
    role: Option<String>,
}

pub async fn acl(
    State(state): State<AppState>,
    body: Result<Json<AclRequest>, JsonRejection>,
) -> Json<Value> {
    let Ok(Json(req)) = body else {
        state.metrics.mqtt_refused(MqttRefusal::Protocol);
        return deny("body is not {\"username\",\"topic\",\"action\"}");
    };
    let (Some(username), Some(topic)) = (req.username, req.topic) else {
        state.metrics.mqtt_refused(MqttRefusal::Protocol);
        return deny("username and topic are required");
    };
    let publish = match (req.action.as_deref(), req.acc) {
        (Some("publish"), _) | (None, Some(2)) => true,
        (Some("subscribe"), _) | (None, Some(1 | 4)) => false,
        _ => {
            state.metrics.mqtt_refused(MqttRefusal::Protocol);
            return deny("action must be publish or subscribe");
        }
    };
    let Some(client) = state.mqtt.client_for_acl(&username, req.role.as_deref()) else {
        state.metrics.mqtt_refused(MqttRefusal::BadCredentials);
        return deny("unknown client");
    };
    let allowed = if publish {
        state.mqtt.may_publish(&client, &topic)
    } else {
        state.mqtt.may_subscribe(&client, &topic)
    };
    if allowed {
        Json(json!({"result": "allow", "ok": true, "error": ""}))
    } else {
        state.metrics.mqtt_refused(if publish {
            MqttRefusal::PublishDenied
        } else {
            MqttRefusal::SubscribeDenied
        });
        deny("not allowed")
    }
}
