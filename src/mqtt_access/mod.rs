//! Who may use the MQTT side, and for what (contract: DESIGN.md, "MQTT
//! security"). One set of rules, asked by the embedded broker for each
//! CONNECT, PUBLISH and SUBSCRIBE, and by external brokers through
//! `POST /api/v1/mqtt/auth` and `/api/v1/mqtt/acl`:
//! - a device logs in as its `device_id` with the password its
//!   `mqtt-credentials` call returned, publishes only to its own telemetry
//!   topic and subscribes to nothing;
//! - an officer logs in as `token` with an API token, subscribes only to
//!   its department's alerts (admin: all alerts) and publishes nothing;
//! - muckwatch's own clients log in with the service credentials of the
//!   configuration and may do anything; they alone publish alerts;
//! - without authentication required (the loopback default), a client
//!   without credentials is anonymous and unrestricted, so that the
//!   simulator and a quick `mosquitto_sub` work on one machine.

mod mosquitto;
mod secret;

use std::fmt;
use std::time::Duration;

use crate::auth::{token_hash, Role};
use crate::configuration::MqttLogin;
use crate::fix::DeviceId;
use crate::metrics::MqttRefusal;
use crate::store::Store;

pub use mosquitto::{mosquitto_files, write_mosquitto_files};
pub use secret::{hash_secret, new_secret, verify_secret};

/// The username officers' clients log in with; their password is an API token.
pub const OFFICER_USERNAME: &str = "token";
/// The default username of muckwatch's own clients: not a valid device id
/// (a `.`), so no device can be issued it.
pub const SERVICE_USERNAME: &str = "muckwatch.service";

/// An authenticated MQTT client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttClient {
    /// muckwatch itself (ingest, alert publisher).
    Service,
    /// No credentials, while authentication is not required.
    Anonymous,
    Device(DeviceId),
    /// An officer (a department) or an administrator, by API token.
    Officer(Role),
}

impl fmt::Display for MqttClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MqttClient::Service => f.write_str("muckwatch"),
            MqttClient::Anonymous => f.write_str("anonymous"),
            MqttClient::Device(d) => write!(f, "device {d}"),
            MqttClient::Officer(r) => write!(f, "officer ({r})"),
        }
    }
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// No credentials while authentication is required.
    Anonymous,
    BadCredentials,
    /// Valid, but not for MQTT (a firm's API token).
    NotAllowed,
    /// The credentials could not be checked now.
    Unavailable,
}

impl LoginRefused {
    pub fn reason(self) -> MqttRefusal {
        match self {
            LoginRefused::Anonymous => MqttRefusal::Anonymous,
            LoginRefused::BadCredentials | LoginRefused::NotAllowed => MqttRefusal::BadCredentials,
            LoginRefused::Unavailable => MqttRefusal::AuthUnavailable,
        }
    }

    pub fn return_code(self) -> rumqttc::ConnectReturnCode {
        use rumqttc::ConnectReturnCode::*;
        match self {
            LoginRefused::Anonymous | LoginRefused::NotAllowed => NotAuthorized,
            LoginRefused::BadCredentials => BadUserNamePassword,
            LoginRefused::Unavailable => ServiceUnavailable,
        }
    }
}

/// The credentials muckwatch's own clients use.
pub type ServiceLogin = MqttLogin;

/// A random password for muckwatch's own clients, for an embedded broker
/// only this process uses and no password configured.
pub fn generated_service_login(username: &str) -> anyhow::Result<ServiceLogin> {
    Ok(MqttLogin {
        username: username.to_string(),
        password: new_secret()?,
    })
}

/// Answers who a client is and what it may do.
pub struct Gate {
    required: bool,
    service: Option<ServiceLogin>,
    /// The topic root (`muckwatch/v1`).
    prefix: String,
    store: Option<Store>,
}

/// Longest a login may wait on the database before it is refused as
/// "unavailable" (the client retries; the broker does not pile up waits).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

impl Gate {
    /// Everyone allowed everything (a broker for tests of other parts).
    pub fn open(prefix: &str) -> Gate {
        Gate {
            required: false,
            service: None,
            prefix: prefix.to_string(),
            store: None,
        }
    }

    pub fn new(
        required: bool,
        service: Option<ServiceLogin>,
        prefix: &str,
        store: Option<Store>,
    ) -> Gate {
        Gate {
            required,
            service,
            prefix: prefix.to_string(),
            store,
        }
    }

    pub fn required(&self) -> bool {
        self.required
    }

    /// A CONNECT's login.
    pub async fn login(&self, login: Option<&rumqttc::Login>) -> Result<MqttClient, LoginRefused> {
        match login {
            Some(l) => self.check(&l.username, Some(&l.password)).await,
            None if self.required => Err(LoginRefused::Anonymous),
            None => Ok(MqttClient::Anonymous),
        }
    }

    /// Checks a username and password (a username alone, without a
    /// password, is refused when authentication is required).
    pub async fn check(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> Result<MqttClient, LoginRefused> {
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return if self.required {
                Err(LoginRefused::BadCredentials)
            } else {
                Ok(MqttClient::Anonymous)
            };
        };
        if let Some(service) = &self.service {
            if username == service.username {
                return if secret::constant_time_eq(password.as_bytes(), service.password.as_bytes())
                {
                    Ok(MqttClient::Service)
                } else {
                    Err(LoginRefused::BadCredentials)
                };
            }
        }
        let Some(store) = &self.store else {
            return Err(LoginRefused::BadCredentials);
        };
        if username == OFFICER_USERNAME {
            let role = lookup(store.token_role(&token_hash(password))).await?;
            return match role {
                Some(role @ (Role::Admin | Role::Dept(_))) => Ok(MqttClient::Officer(role)),
                Some(Role::Firm(_)) => Err(LoginRefused::NotAllowed),
                None => Err(LoginRefused::BadCredentials),
            };
        }
        let device = DeviceId::parse(username).map_err(|_| LoginRefused::BadCredentials)?;
        match lookup(store.mqtt_credential(&device)).await? {
            Some(hash) if verify_secret(password, &hash) => Ok(MqttClient::Device(device)),
            _ => Err(LoginRefused::BadCredentials),
        }
    }

    /// Who a client that logged in as `username` is, for an external
    /// broker's authorization request: an officer's role comes back as the
    /// `role` client attribute that [`Gate::check`]'s answer set (EMQX
    /// `${client_attrs.role}`); the username alone cannot say it.
    pub fn client_for_acl(&self, username: &str, role: Option<&str>) -> Option<MqttClient> {
        if self
            .service
            .as_ref()
            .is_some_and(|s| s.username == username)
        {
            return Some(MqttClient::Service);
        }
        if username == OFFICER_USERNAME {
            return match Role::parse(role?).ok()? {
                r @ (Role::Admin | Role::Dept(_)) => Some(MqttClient::Officer(r)),
                Role::Firm(_) => None,
            };
        }
        DeviceId::parse(username).ok().map(MqttClient::Device)
    }

    /// The topics `client` may use, as EMQX ACL rules (`acl` in an
    /// authentication answer), ending with a deny of everything else.
    pub fn acl_rules(&self, client: &MqttClient) -> Vec<(&'static str, String)> {
        let p = &self.prefix;
        match client {
            MqttClient::Service | MqttClient::Anonymous => vec![("all", "#".into())],
            MqttClient::Device(d) => vec![("publish", crate::ingest::position_topic(p, d))],
            MqttClient::Officer(Role::Admin) => vec![("subscribe", format!("{p}/alerts/#"))],
            MqttClient::Officer(Role::Dept(d)) => vec![("subscribe", format!("{p}/alerts/{d}"))],
            MqttClient::Officer(Role::Firm(_)) => vec![],
        }
    }

    /// May `client` publish to `topic`?
    pub fn may_publish(&self, client: &MqttClient, topic: &str) -> bool {
        match client {
            MqttClient::Service | MqttClient::Anonymous => true,
            MqttClient::Device(d) => topic == crate::ingest::position_topic(&self.prefix, d),
            MqttClient::Officer(_) => false,
        }
    }

    /// May `client` subscribe to `filter`? A filter is allowed only if every
    /// topic it can match is one the client may read.
    pub fn may_subscribe(&self, client: &MqttClient, filter: &str) -> bool {
        match client {
            MqttClient::Service | MqttClient::Anonymous => true,
            MqttClient::Device(_) => false,
            MqttClient::Officer(role) => {
                let Some(rest) = filter
                    .strip_prefix(self.prefix.as_str())
                    .and_then(|r| r.strip_prefix("/alerts/"))
                else {
                    return false;
                };
                match role {
                    Role::Admin => {
                        rest == "#" || rest == "+" || crate::auth::Department::parse(rest).is_some()
                    }
                    Role::Dept(d) => rest == d.as_str(),
                    Role::Firm(_) => false,
                }
            }
        }
    }
}

/// A store lookup bounded in time; a failure is "unavailable", not "wrong".
async fn lookup<T>(
    query: impl std::future::Future<Output = crate::store::StoreResult<T>>,
) -> Result<T, LoginRefused> {
    match tokio::time::timeout(LOOKUP_TIMEOUT, query).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot check MQTT credentials");
            Err(LoginRefused::Unavailable)
        }
        Err(_) => {
            tracing::warn!("MQTT credential lookup timed out");
            Err(LoginRefused::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Department;

    #[test]
    fn topic_rules() {
        let g = Gate::new(true, None, "muckwatch/v1", None);
        let d = DeviceId::parse("013800000001").unwrap();
        let own = crate::ingest::position_topic("muckwatch/v1", &d);
        let dev = MqttClient::Device(d);
        assert!(g.may_publish(&dev, &own));
        assert!(!g.may_publish(&dev, "muckwatch/v1/pos/07/013800000002"));
        assert!(!g.may_publish(&dev, "muckwatch/v1/alerts/police"));
        assert!(!g.may_subscribe(&dev, &own));
        let police = MqttClient::Officer(Role::Dept(Department::Police));
        assert!(g.may_subscribe(&police, "muckwatch/v1/alerts/police"));
        assert!(!g.may_subscribe(&police, "muckwatch/v1/alerts/urban"));
        assert!(!g.may_subscribe(&police, "muckwatch/v1/alerts/+"));
        assert!(!g.may_subscribe(&police, "muckwatch/v1/#"));
        assert!(!g.may_subscribe(&police, "#"));
        assert!(!g.may_publish(&police, "muckwatch/v1/alerts/police"));
        let admin = MqttClient::Officer(Role::Admin);
        assert!(g.may_subscribe(&admin, "muckwatch/v1/alerts/#"));
        assert!(g.may_subscribe(&admin, "muckwatch/v1/alerts/urban"));
        assert!(!g.may_subscribe(&admin, "muckwatch/v1/pos/+/+"));
        assert!(!g.may_subscribe(&admin, "muckwatch/v1/alerts/x/#"));
        assert!(g.may_publish(&MqttClient::Service, "muckwatch/v1/alerts/police"));
    }

    #[tokio::test]
    async fn logins() {
        let service = generated_service_login(SERVICE_USERNAME).unwrap();
        let g = Gate::new(true, Some(service.clone()), "muckwatch/v1", None);
        assert_eq!(g.login(None).await, Err(LoginRefused::Anonymous));
        assert_eq!(
            g.check(&service.username, Some(&service.password)).await,
            Ok(MqttClient::Service)
        );
        assert_eq!(
            g.check(&service.username, Some("nope")).await,
            Err(LoginRefused::BadCredentials)
        );
        assert_eq!(
            g.check("dev-1", None).await,
            Err(LoginRefused::BadCredentials)
        );
        let open = Gate::open("muckwatch/v1");
        assert_eq!(open.login(None).await, Ok(MqttClient::Anonymous));
    }
}
