//! API tokens: creation, hashing and verification, and the caller's role and scope.
//!
//! A token reads `vg_<id>_<secret>`. The store keeps the id and an Argon2id hash of the
//! secret, never the secret. Verifying Argon2 costs tens of milliseconds and 19 MiB by design,
//! so a token is verified once per process and then remembered; every `CACHE_FOR` the store is
//! asked again whether the token is still live (a cheap lookup by id). Revoking through the
//! API forgets the token at once; revoking through the CLI takes effect within `CACHE_FOR`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::store::{Scope, Store, TokenRecord};

const CACHE_FOR: Duration = Duration::from_secs(10);
const CACHE_MAX: usize = 10_000;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, across clients: estate, tokens, reload.
    Admin,
    /// Supervision staff: every client's data, incident actions, ingest.
    Operator,
    /// A client's contact: that client's data only, and comments on its incidents.
    Client,
    /// A client's sources: posting events for that client only.
    Ingest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Client => "client",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            "client" => Role::Client,
            "ingest" => Role::Ingest,
            _ => return None,
        })
    }

    /// Client and ingest tokens belong to one client; the others to none.
    pub fn is_client_bound(self) -> bool {
        matches!(self, Role::Client | Role::Ingest)
    }
}

/// Who is calling, once their token is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    pub client: Option<String>,
}

impl Caller {
    pub fn scope(&self) -> Scope {
        match &self.client {
            Some(client) => Scope::Client(client.clone()),
            None => Scope::All,
        }
    }

    /// How the caller appears in timelines.
    pub fn actor(&self) -> String {
        self.name.clone()
    }
}

/// A new token as handed to its owner: the only time the secret is shown.
pub struct IssuedToken {
    pub record: TokenRecord,
    pub token: String,
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates and stores a token. `client` is required for client-bound roles and refused for
/// the others.
pub async fn issue_token(
    store: &Store,
    name: &str,
    role: Role,
    client: Option<&str>,
    now_ms: i64,
) -> Result<IssuedToken> {
    match (role.is_client_bound(), client) {
        (true, None) => bail!("a {} token needs --client", role.as_str()),
        (false, Some(_)) => bail!(
            "an {} token spans every client: drop --client",
            role.as_str()
        ),
        _ => {}
    }
    if name.trim().is_empty() {
        bail!("a token needs a name");
    }
    let id = random_hex(6)?;
    let secret = random_hex(16)?;
    let hash = hash_secret(&secret)?;
    let record = TokenRecord {
        id: id.clone(),
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        client: client.map(str::to_owned),
        hash,
        created_ms: now_ms,
        revoked_ms: None,
    };
    store.insert_token(&record).await?;
    Ok(IssuedToken {
        record,
        token: format!("vg_{id}_{secret}"),
    })
}

fn hash_secret(secret: &str) -> Result<String> {
    let hash = Argon2::default()
        .hash_password(secret.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot hash token: {e}"))?;
    Ok(hash.to_string())
}

/// Splits `vg_<id>_<secret>`.
fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("vg_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && secret.len() == 32).then_some((id, secret))
}

#[derive(Clone)]
pub struct Authenticator {
    store: Arc<Store>,
    verified: Arc<Mutex<HashMap<String, (Caller, Instant)>>>,
    /// One Argon2 verification at a time: a burst of requests with a new token costs one
    /// verification, not one each (19 MiB and tens of milliseconds apiece), and guessing
    /// secrets can take at most one core.
    verifying: Arc<tokio::sync::Mutex<()>>,
}

impl Authenticator {
    pub fn new(store: Arc<Store>) -> Authenticator {
        Authenticator {
            store,
            verified: Arc::new(Mutex::new(HashMap::new())),
            verifying: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The caller behind a bearer token, or `None` for an unknown, malformed or revoked one.
    pub async fn verify(&self, token: &str) -> Result<Option<Caller>> {
        let known = self.lock().get(token).cloned();
        if let Some((caller, checked)) = known {
            if checked.elapsed() < CACHE_FOR {
                return Ok(Some(caller));
            }
            let live = self
                .store
                .find_token(&caller.token_id)
                .await?
                .is_some_and(|record| record.revoked_ms.is_none());
            let mut verified = self.lock();
            if live {
                verified.insert(token.to_owned(), (caller.clone(), Instant::now()));
                return Ok(Some(caller));
            }
            verified.remove(token);
            return Ok(None);
        }
        let Some((id, secret)) = split_token(token) else {
            return Ok(None);
        };
        let _verifying = self.verifying.lock().await;
        // Another request may have verified this token while this one waited.
        if let Some((caller, _)) = self.lock().get(token) {
            return Ok(Some(caller.clone()));
        }
        let Some(record) = self.store.find_token(id).await? else {
            return Ok(None);
        };
        if record.revoked_ms.is_some() {
            return Ok(None);
        }
        let secret = secret.to_owned();
        let hash = record.hash.clone();
        // Argon2 is CPU-heavy by design: keep it off the async workers.
        let matches = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(secret.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .context("token verification task failed")?;
        if !matches {
            return Ok(None);
        }
        let caller = Caller {
            token_id: record.id.clone(),
            name: record.name.clone(),
            role: Role::parse(&record.role).with_context(|| {
                format!("token {} has unknown role {:?}", record.id, record.role)
            })?,
            client: record.client.clone(),
        };
        let mut verified = self.lock();
        if verified.len() >= CACHE_MAX {
            // Rarely reached (one entry per live token): start over rather than grow.
            verified.clear();
        }
        verified.insert(token.to_owned(), (caller.clone(), Instant::now()));
        Ok(Some(caller))
    }

    /// Forgets every cached verification of a token id (after it was revoked).
    pub fn forget(&self, token_id: &str) {
        self.lock()
            .retain(|_, (caller, _)| caller.token_id != token_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Caller, Instant)>> {
        // A poisoned cache only means a panic elsewhere mid-insert: the map is still usable.
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}
