//! Which asset sent this line: hash indexes from hostnames and addresses to assets, built once
//! per estate because the lookup runs for every syslog line. Guards one invariant: a key
//! claimed by assets of two clients matches neither — the MSP's clients reuse private
//! addresses and short hostnames, and an event filed under the wrong client is worse than an
//! unattributed one.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::Client;

/// The asset a sender was matched to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SenderMatch {
    pub client: String,
    pub asset: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum IndexEntry {
    Unique(SenderMatch),
    Ambiguous,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderIndex {
    hostnames: HashMap<String, IndexEntry>,
    addresses: HashMap<IpAddr, IndexEntry>,
}

/// The form hostnames are compared in: lowercase, without the root's trailing dot.
pub fn normalize_hostname(hostname: &str) -> String {
    hostname.trim().trim_end_matches('.').to_lowercase()
}

/// The form addresses are compared in: a dual-stack socket reports an IPv4 sender as
/// `::ffff:a.b.c.d`, which must match the `a.b.c.d` written in the estate.
pub fn normalize_address(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

impl SenderIndex {
    pub fn build(clients: &BTreeMap<String, Client>) -> SenderIndex {
        let mut index = SenderIndex::default();
        for client in clients.values() {
            for asset in &client.assets {
                let found = SenderMatch {
                    client: client.id.clone(),
                    asset: asset.id.clone(),
                };
                for hostname in &asset.hostnames {
                    claim(&mut index.hostnames, normalize_hostname(hostname), &found);
                }
                for address in &asset.addresses {
                    claim(&mut index.addresses, normalize_address(*address), &found);
                }
            }
        }
        index
    }

    /// By hostname first (exact, then the first label of an FQDN), then by address. A
    /// hostname that is an IP literal, as many syslog senders write it, counts as an address.
    pub fn find(&self, address: Option<IpAddr>, hostname: Option<&str>) -> Option<SenderMatch> {
        let hostname = hostname.map(normalize_hostname);
        let literal = hostname
            .as_deref()
            .and_then(|name| name.parse::<IpAddr>().ok());
        let by_name = match (&hostname, literal) {
            (Some(name), None) => self.find_by_hostname(name),
            _ => None,
        };
        by_name
            .or_else(|| address.and_then(|address| self.find_by_address(address)))
            .or_else(|| literal.and_then(|address| self.find_by_address(address)))
    }

    fn find_by_hostname(&self, name: &str) -> Option<SenderMatch> {
        match self.hostnames.get(name) {
            Some(entry) => unique(entry),
            None => {
                let (first_label, _domain) = name.split_once('.')?;
                unique(self.hostnames.get(first_label)?)
            }
        }
    }

    fn find_by_address(&self, address: IpAddr) -> Option<SenderMatch> {
        unique(self.addresses.get(&normalize_address(address))?)
    }
}

fn claim<K: std::hash::Hash + Eq>(index: &mut HashMap<K, IndexEntry>, key: K, found: &SenderMatch) {
    index
        .entry(key)
        .and_modify(|entry| {
            if *entry != IndexEntry::Unique(found.clone()) {
                *entry = IndexEntry::Ambiguous;
            }
        })
        .or_insert_with(|| IndexEntry::Unique(found.clone()));
}

fn unique(entry: &IndexEntry) -> Option<SenderMatch> {
    match entry {
        IndexEntry::Unique(found) => Some(found.clone()),
        IndexEntry::Ambiguous => None,
    }
}
