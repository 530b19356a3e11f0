//! A hunt tuned like one client's detection in `vigie serve` (`--estate DIR --client ID
//! --sigma-filters DIR`): the rules are compiled by the code serve uses
//! (`crate::rule::compile_detection`, every client of the estate giving its placeholder
//! values), then kept to what runs for the hunted client — the rules for everyone, that
//! client's copies of the rules with `expand` placeholders, and the filters scoped to it or to
//! every client. `DetectionSet::matching_document` then reads the `client` the hunt gives each
//! event, as it reads the one serve gives, so both match the same events.
//!
//! The estate is serve's too: the files, then the clients and assets created through the API,
//! merged by serve's own `estate::add_api_objects` from its store, opened read-only.
//!
//! Invariant: a hunt never runs with less tuning than the analyst asked for. A filter of
//! `--sigma-filters` that concerns the hunted client and is rejected stops the hunt (serve, a
//! server, runs on without it and logs it; a hunt is run again once the filter is fixed), and
//! so does a store that was named and does not open. Only the default store, when it was never
//! created, is done without, and stderr says so.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use vigie_core::estate::Estate;
use vigie_core::rule::sigma::RuleSet;

use crate::estate::add_api_objects;
use crate::rule::{DetectionFiles, compile_detection, located, read_estate};
use crate::store::Store;

/// Where a tuned hunt reads the clients and assets created through `vigie serve`'s API.
pub enum EstateStore {
    /// Serve's store, opened to be read only (`Store::open_existing`), and its name as stderr
    /// shows it (without a password).
    Open { store: Store, name: String },
    /// No store was named and the default embedded database, this file, does not exist.
    Absent(PathBuf),
}

/// The estate of `dir`'s files and, from `store`, the objects created through the API, with
/// one line on stderr saying what came from where. The store is closed once read.
pub async fn read_estate_with_api_objects(
    dir: &Path,
    store: Option<EstateStore>,
) -> Result<Estate> {
    let mut estate = read_estate(dir)?;
    match store {
        None => {}
        Some(EstateStore::Absent(database)) => eprintln!(
            "estate: the files of {} alone, no database at {} (no client or asset created \
             through the API)",
            dir.display(),
            database.display()
        ),
        Some(EstateStore::Open { store, name }) => {
            let merged = add_api_objects(&mut estate, &store).await;
            store.close().await;
            let counts = merged.map_err(|problems| {
                let listed: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
                anyhow::anyhow!(
                    "the estate {} with the objects created through the API in {name} does not \
                     load:\n{}",
                    dir.display(),
                    listed.join("\n")
                )
            })?;
            eprintln!(
                "estate: the files of {}, and {} clients and {} assets created through the API \
                 (from {name})",
                dir.display(),
                counts.clients,
                counts.assets
            );
        }
    }
    Ok(estate)
}

/// How many client ids an error lists before it summarises the rest.
const LISTED_CLIENTS: usize = 20;

/// The client whose tuning applies: `wanted`, which must be a client of the estate, or the
/// estate's only client.
pub fn pick_client(estate: &Estate, estate_dir: &Path, wanted: Option<&str>) -> Result<String> {
    let known = || {
        let mut listed: Vec<String> = estate
            .clients
            .keys()
            .take(LISTED_CLIENTS)
            .map(|id| format!("`{id}`"))
            .collect();
        let more = estate.clients.len().saturating_sub(LISTED_CLIENTS);
        if more > 0 {
            listed.push(format!("{more} more"));
        }
        listed.join(", ")
    };
    match wanted {
        Some(id) if estate.client(id).is_some() => Ok(id.to_owned()),
        Some(id) if estate.clients.is_empty() => anyhow::bail!(
            "no client `{id}` in the estate {}: it has no client",
            estate_dir.display()
        ),
        Some(id) => anyhow::bail!(
            "no client `{id}` in the estate {}; its clients: {}",
            estate_dir.display(),
            known()
        ),
        None => match estate.clients.len() {
            1 => Ok(estate
                .clients
                .keys()
                .next()
                .expect("invariant: the estate has one client")
                .clone()),
            0 => anyhow::bail!(
                "the estate {} has no client whose tuning could apply",
                estate_dir.display()
            ),
            count => anyhow::bail!(
                "the estate {} has {count} clients: say whose tuning applies with --client \
                 (one of {})",
                estate_dir.display(),
                known()
            ),
        },
    }
}

/// What compiling for the hunted client gave, beside the rules.
#[derive(Debug, Default)]
pub struct ClientRules {
    /// Rules with `expand` placeholders that do not run for the client (it gives no values
    /// for them, or its copy was rejected).
    pub not_for_client: usize,
}

/// Compiles `files` for the clients of `estate` as `vigie serve` does, then keeps what runs
/// for `client`. Fails, listing each with its file and line, when a filter of the filters
/// directory that tunes `client` (one of its own, or one for every client) is rejected.
pub fn compile_for_client(
    files: DetectionFiles,
    estate: &Estate,
    client: &str,
) -> Result<(RuleSet, ClientRules)> {
    // The filter files that tune this client, by path: their rejections are fatal.
    let in_scope: HashSet<String> = files
        .filters
        .iter()
        .filter(|file| file.client.as_deref().is_none_or(|own| own == client))
        .map(|file| file.path.clone())
        .collect();
    let mut set = compile_detection(files, Some(estate));
    let broken: Vec<String> = set
        .rejected
        .iter()
        .filter(|rejection| in_scope.contains(&rejection.path))
        .map(|rejection| {
            format!(
                "  {}",
                located(
                    &rejection.path,
                    rejection.line,
                    rejection.rule_id.as_deref(),
                    &rejection.reason
                )
            )
        })
        .collect();
    if !broken.is_empty() {
        anyhow::bail!(
            "the filters tuning client `{client}` do not all load, and a hunt without them \
             would not match what `vigie serve` alerts on:\n{}",
            broken.join("\n")
        );
    }
    let mut outcome = ClientRules::default();
    set.per_client.retain_mut(|rule| {
        rule.variants.retain(|(owner, _)| owner == client);
        if rule.variants.is_empty() {
            outcome.not_for_client += 1;
        }
        !rule.variants.is_empty()
    });
    set.filters
        .retain(|filter| filter.applies_to_client(Some(client)));
    Ok((set, outcome))
}
