//! The running estate: read from the estate directory, merged with the objects created
//! through the API (kept in the store), and swapped whole on reload.
//!
//! Invariant: the estate in use always passed validation. A reload or an API addition that
//! does not validate changes nothing and reports every problem; readers hold an `Arc` to the
//! estate they started with, so a swap never tears a request or a pipeline batch. What is
//! built from the estate (the Sigma rules compiled per client) is built against the new
//! estate before it is swapped in (`reload_with`), so a refused reload changes neither.
//! `vigie hunt` merges the API objects the same way (`add_api_objects`), from a store it only
//! reads.
//!
//! `ClientHosts` finds one client's asset from a host name or address as events write them
//! (a lateral movement's source and target), never looking at another client's assets.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Result;
use vigie_core::estate::{
    Asset, Client, Estate, EstateFile, GroupingKey, load_estate as load_files,
};
use vigie_core::incident::{GroupBy, GroupingPolicy};

use crate::store::{EstateObject, Store};

/// Estate objects created through the API are kept under these kinds.
const KIND_CLIENT: &str = "client";
const KIND_ASSET: &str = "asset";

#[derive(Clone)]
pub struct EstateHandle {
    dir: PathBuf,
    current: Arc<RwLock<(u64, Arc<Estate>)>>,
    /// Serialises changes (reload, API additions) so that none is lost between read and swap.
    changing: Arc<tokio::sync::Mutex<()>>,
}

/// Every `*.yaml` and `*.yml` file of the estate directory, recursively, in path order.
pub fn read_estate_dir(dir: &Path) -> Result<Vec<EstateFile>> {
    Ok(crate::config::read_yaml_dir(dir, "estate directory")?
        .into_iter()
        .map(|(path, text)| EstateFile { path, text })
        .collect())
}

/// The estate as files and API objects define it, or every problem found.
pub async fn load_estate(dir: &Path, store: &Store) -> Result<Estate, Vec<String>> {
    let files = read_estate_dir(dir).map_err(|e| vec![format!("{e:#}")])?;
    let mut estate = load_files(&files)
        .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    add_api_objects(&mut estate, store).await?;
    Ok(estate)
}

/// How many estate objects created through the API were merged into the files' estate.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApiObjectCounts {
    pub clients: usize,
    pub assets: usize,
}

/// Merges into `estate` (the files') the clients and assets created through the API that
/// `store` keeps, as `load_estate` does; `vigie hunt` calls it on a store it only reads.
pub async fn add_api_objects(
    estate: &mut Estate,
    store: &Store,
) -> Result<ApiObjectCounts, Vec<String>> {
    let objects = store
        .list_estate_objects()
        .await
        .map_err(|e| vec![format!("{e:#}")])?;
    merge_api_objects(estate, objects)
}

fn merge_api_objects(
    estate: &mut Estate,
    objects: Vec<EstateObject>,
) -> Result<ApiObjectCounts, Vec<String>> {
    let mut problems = Vec::new();
    let mut clients = BTreeMap::new();
    let mut assets: BTreeMap<String, Vec<Asset>> = BTreeMap::new();
    for object in objects {
        let place = format!(
            "api object {}/{}/{}",
            object.kind, object.client_id, object.object_id
        );
        match object.kind.as_str() {
            KIND_CLIENT => match serde_json::from_value::<Client>(object.body) {
                Ok(client) => {
                    clients.insert(client.id.clone(), client);
                }
                Err(e) => problems.push(format!("{place}: {e}")),
            },
            KIND_ASSET => match serde_json::from_value::<Asset>(object.body) {
                Ok(asset) => assets.entry(object.client_id).or_default().push(asset),
                Err(e) => problems.push(format!("{place}: {e}")),
            },
            other => problems.push(format!("{place}: unknown kind {other:?}")),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let counts = ApiObjectCounts {
        clients: clients.len(),
        assets: assets.values().map(Vec::len).sum(),
    };
    let to_strings = |d: Vec<vigie_core::estate::Diagnostic>| {
        d.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    estate.merge(Estate::new(clients)).map_err(to_strings)?;
    for (client_id, assets) in assets {
        let Some(client) = estate.client(&client_id) else {
            problems.push(format!(
                "api assets of client {client_id:?}: the client no longer exists"
            ));
            continue;
        };
        let mut shell = client.empty_copy();
        shell.assets = assets;
        estate
            .merge(Estate::new(BTreeMap::from([(client_id, shell)])))
            .map_err(to_strings)?;
    }
    if problems.is_empty() {
        Ok(counts)
    } else {
        Err(problems)
    }
}

impl EstateHandle {
    pub fn new(dir: PathBuf, estate: Estate) -> EstateHandle {
        EstateHandle {
            dir,
            current: Arc::new(RwLock::new((0, Arc::new(estate)))),
            changing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The estate in use and its version (incremented by every swap).
    pub fn current(&self) -> (u64, Arc<Estate>) {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        (guard.0, guard.1.clone())
    }

    fn swap(&self, estate: Estate) {
        self.swap_shared(Arc::new(estate));
    }

    fn swap_shared(&self, estate: Arc<Estate>) {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        *guard = (guard.0 + 1, estate);
    }

    /// Re-reads the files and the API objects and, if they load, runs `prepare` on the new
    /// estate before swapping it in: what depends on the estate (the Sigma rules compiled per
    /// client) is built against it, and when `prepare` fails nothing changes. Returns what
    /// `prepare` built, or every problem.
    pub async fn reload_with<T, F, Fut>(&self, store: &Store, prepare: F) -> Result<T, Vec<String>>
    where
        F: FnOnce(Arc<Estate>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Vec<String>>>,
    {
        let _changing = self.changing.lock().await;
        let estate = Arc::new(load_estate(&self.dir, store).await?);
        let prepared = prepare(Arc::clone(&estate)).await?;
        self.swap_shared(estate);
        Ok(prepared)
    }

    /// Re-reads the files and the API objects; keeps the running estate on any problem.
    pub async fn reload(&self, store: &Store) -> Result<(), Vec<String>> {
        self.reload_unless(store, Vec::new()).await
    }

    /// `reload`, within a larger reload that found `held_back` problems elsewhere (the rules):
    /// then the estate is still read, for its own problems, but not swapped in. On any problem
    /// nothing changes and every problem, the estate's first, comes back.
    pub async fn reload_unless(
        &self,
        store: &Store,
        held_back: Vec<String>,
    ) -> Result<(), Vec<String>> {
        let _changing = self.changing.lock().await;
        let mut problems = match load_estate(&self.dir, store).await {
            Ok(estate) if held_back.is_empty() => {
                self.swap(estate);
                return Ok(());
            }
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        };
        problems.extend(held_back);
        Err(problems)
    }

    /// Adds a client created through the API: validated against the running estate, stored,
    /// then swapped in.
    pub async fn add_client(&self, store: &Store, client: Client) -> Result<(), AddError> {
        let _changing = self.changing.lock().await;
        let mut estate = (*self.current().1).clone();
        if estate.client(&client.id).is_some() {
            return Err(AddError::Exists(format!(
                "client {:?} already exists",
                client.id
            )));
        }
        let object = EstateObject {
            kind: KIND_CLIENT.into(),
            client_id: client.id.clone(),
            object_id: client.id.clone(),
            body: serde_json::to_value(&client).map_err(|e| AddError::Store(e.to_string()))?,
        };
        estate
            .merge(Estate::new(BTreeMap::from([(client.id.clone(), client)])))
            .map_err(|d| AddError::Invalid(d.iter().map(ToString::to_string).collect()))?;
        store
            .put_estate_object(&object, crate::clock::now_ms())
            .await
            .map_err(|e| AddError::Store(format!("{e:#}")))?;
        self.swap(estate);
        Ok(())
    }

    /// Adds an asset to an existing client (defined by files or by the API).
    pub async fn add_asset(
        &self,
        store: &Store,
        client_id: &str,
        asset: Asset,
    ) -> Result<(), AddError> {
        let _changing = self.changing.lock().await;
        let mut estate = (*self.current().1).clone();
        let Some(client) = estate.client(client_id) else {
            return Err(AddError::NoClient);
        };
        if client.asset(&asset.id).is_some() {
            return Err(AddError::Exists(format!(
                "asset {:?} already exists in client {client_id:?}",
                asset.id
            )));
        }
        let mut shell = client.empty_copy();
        let object = EstateObject {
            kind: KIND_ASSET.into(),
            client_id: client_id.to_owned(),
            object_id: asset.id.clone(),
            body: serde_json::to_value(&asset).map_err(|e| AddError::Store(e.to_string()))?,
        };
        shell.assets.push(asset);
        estate
            .merge(Estate::new(BTreeMap::from([(client_id.to_owned(), shell)])))
            .map_err(|d| AddError::Invalid(d.iter().map(ToString::to_string).collect()))?;
        store
            .put_estate_object(&object, crate::clock::now_ms())
            .await
            .map_err(|e| AddError::Store(format!("{e:#}")))?;
        self.swap(estate);
        Ok(())
    }
}

#[derive(Debug)]
pub enum AddError {
    Exists(String),
    NoClient,
    Invalid(Vec<String>),
    Store(String),
}

/// The incident book's grouping policy for a client, from its estate settings.
pub fn grouping_policy(client: &Client) -> GroupingPolicy {
    GroupingPolicy {
        by: client
            .incident_grouping
            .by
            .iter()
            .map(|key| match key {
                GroupingKey::Asset => GroupBy::Asset,
                GroupingKey::Rule => GroupBy::Rule,
                GroupingKey::Source => GroupBy::Source,
                GroupingKey::Kind => GroupBy::Kind,
            })
            .collect(),
        window_ms: client.incident_grouping.window_ms,
        reopen_window_ms: client.reopen_window_ms,
    }
}

/// One client's assets by the names and addresses events give hosts: asset ids and hostnames
/// (case-insensitively, an FQDN also by its first label) and addresses. Built from that
/// client alone, so that a host resolves to an asset of the event's own client or to nothing
/// — the MSP's clients reuse private addresses and short names. A key two assets of the client
/// claim resolves to nothing: never a guess.
#[derive(Debug, Default)]
pub struct ClientHosts {
    /// Asset ids and hostnames, normalised.
    names: HashMap<String, Option<String>>,
    /// The first label of every id and hostname, for FQDNs written one way and not the other.
    short_names: HashMap<String, Option<String>>,
    addresses: HashMap<IpAddr, Option<String>>,
}

/// The form host names are compared in: lowercase, without a UNC prefix (`\\HOST`) or the
/// root's trailing dot.
fn normalize_host(name: &str) -> String {
    name.trim()
        .trim_start_matches('\\')
        .trim_end_matches('.')
        .to_lowercase()
}

fn first_label(name: &str) -> &str {
    name.split_once('.').map_or(name, |(label, _)| label)
}

fn claim<K: std::hash::Hash + Eq>(index: &mut HashMap<K, Option<String>>, key: K, asset: &str) {
    index
        .entry(key)
        .and_modify(|found| {
            if found.as_deref() != Some(asset) {
                *found = None;
            }
        })
        .or_insert_with(|| Some(asset.to_owned()));
}

impl ClientHosts {
    pub fn build(client: &Client) -> ClientHosts {
        let mut hosts = ClientHosts::default();
        for asset in &client.assets {
            for name in std::iter::once(&asset.id).chain(&asset.hostnames) {
                let name = normalize_host(name);
                if name.is_empty() {
                    continue;
                }
                claim(
                    &mut hosts.short_names,
                    first_label(&name).to_owned(),
                    &asset.id,
                );
                claim(&mut hosts.names, name, &asset.id);
            }
            for address in &asset.addresses {
                claim(&mut hosts.addresses, address.to_canonical(), &asset.id);
            }
        }
        hosts
    }

    /// The asset a host designates: an address (`::ffff:a.b.c.d` is `a.b.c.d`) by address only;
    /// a name by exact id or hostname, failing that by its first label.
    pub fn find(&self, host: &str) -> Option<&str> {
        let name = normalize_host(host);
        if let Ok(address) = name.parse::<IpAddr>() {
            return self.addresses.get(&address.to_canonical())?.as_deref();
        }
        match self.names.get(&name) {
            Some(found) => found.as_deref(),
            None => self.short_names.get(first_label(&name))?.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(yaml: &str) -> Client {
        let estate = load_files(&[EstateFile {
            path: "acme.yaml".into(),
            text: yaml.into(),
        }])
        .unwrap_or_else(|problems| panic!("{problems:?}"));
        estate.clients.into_values().next().unwrap()
    }

    #[test]
    fn hosts_resolve_by_id_hostname_short_name_and_address_never_by_guess() {
        let hosts = ClientHosts::build(&client(
            "id: acme\nname: ACME\nassets:\n\
             - { id: fs01, kind: host, addresses: [10.0.0.11], hostnames: [fs01.acme.lan] }\n\
             - { id: app01, kind: host, addresses: [10.0.0.20], hostnames: [APP01] }\n\
             - { id: app02, kind: host, hostnames: [app02, shared.acme.lan] }\n\
             - { id: app03, kind: host, hostnames: [shared.plant.lan] }\n",
        ));
        assert_eq!(hosts.find("FS01.acme.lan."), Some("fs01"));
        assert_eq!(hosts.find("fs01.other.lan"), Some("fs01"), "by first label");
        assert_eq!(hosts.find("app01.acme.lan"), Some("app01"));
        assert_eq!(hosts.find("\\\\APP02"), Some("app02"));
        assert_eq!(hosts.find("10.0.0.11"), Some("fs01"));
        assert_eq!(hosts.find("::ffff:10.0.0.11"), Some("fs01"));
        assert_eq!(hosts.find("10.0.0.20"), Some("app01"));
        assert_eq!(hosts.find("SHARED.plant.lan"), Some("app03"));
        assert_eq!(
            hosts.find("shared"),
            None,
            "two assets claim the short name"
        );
        assert_eq!(
            hosts.find("shared.other.lan"),
            None,
            "two assets claim the short name"
        );
        assert_eq!(hosts.find("10.0.0.99"), None);
        assert_eq!(hosts.find("db01"), None);
    }
}
