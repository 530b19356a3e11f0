//! Logsource routing: the `product`, `category` and `service` an event stands for, and whether
//! a rule's logsource admits it. Windows events in the EVTX layout get their category and
//! service from their channel and event id, as Hayabusa's and pySigma's Windows mappings do.

use serde_json::Value;

use crate::rule::sigma::LogSource;

/// The logsource an event states: its `product`, `category` and `service` fields (at the top
/// of its fields or under `logsource`); for events in the EVTX layout, `windows` and what its
/// channel and event id imply (Sysmon's event ids, Security 4688, PowerShell's script and
/// module logs), as Hayabusa's and pySigma's Windows mappings do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EventLogSource {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
    /// The Windows channel of an EVTX-layout event.
    pub channel: Option<String>,
}

/// Sigma's Windows services and the channel each reads. A rule naming a service not listed
/// here is tested against every Windows event.
const WINDOWS_SERVICES: &[(&str, &str)] = &[
    ("security", "Security"),
    ("system", "System"),
    ("application", "Application"),
    ("sysmon", "Microsoft-Windows-Sysmon/Operational"),
    ("powershell", "Microsoft-Windows-PowerShell/Operational"),
    ("powershell-classic", "Windows PowerShell"),
    (
        "windefend",
        "Microsoft-Windows-Windows Defender/Operational",
    ),
    (
        "taskscheduler",
        "Microsoft-Windows-TaskScheduler/Operational",
    ),
    ("wmi", "Microsoft-Windows-WMI-Activity/Operational"),
    (
        "codeintegrity-operational",
        "Microsoft-Windows-CodeIntegrity/Operational",
    ),
    ("bits-client", "Microsoft-Windows-Bits-Client/Operational"),
];

/// The categories this module derives from a Windows event; a rule with one of them is tested
/// only against events of that category. Other categories (from ETW providers or EDRs) are
/// not derived, and their rules are tested against every Windows event.
const DERIVED_CATEGORIES: &[&str] = &[
    "process_creation",
    "file_change",
    "network_connection",
    "sysmon_status",
    "process_termination",
    "driver_load",
    "image_load",
    "create_remote_thread",
    "raw_access_thread",
    "process_access",
    "file_event",
    "registry_add",
    "registry_delete",
    "registry_set",
    "registry_rename",
    "registry_event",
    "create_stream_hash",
    "pipe_created",
    "wmi_event",
    "dns_query",
    "file_delete",
    "clipboard_capture",
    "process_tampering",
    "file_executable_detected",
    "sysmon_error",
    "ps_script",
    "ps_module",
    "ps_classic_start",
    "ps_classic_provider_start",
    "ps_classic_script",
];

fn event_id(document: &Value) -> Option<i64> {
    let id = document.pointer("/Event/System/EventID")?;
    let id = id.get("#text").unwrap_or(id);
    id.as_i64()
        .or_else(|| id.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The category a Windows event's channel and id imply.
fn windows_category(channel: &str, id: i64, document: &Value) -> Option<&'static str> {
    let sysmon = |id| {
        Some(match id {
            1 => "process_creation",
            2 => "file_change",
            3 => "network_connection",
            4 | 16 => "sysmon_status",
            5 => "process_termination",
            6 => "driver_load",
            7 => "image_load",
            8 => "create_remote_thread",
            9 => "raw_access_thread",
            10 => "process_access",
            11 => "file_event",
            12 => {
                let deleted = document
                    .pointer("/Event/EventData/EventType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.contains("Delete"));
                if deleted {
                    "registry_delete"
                } else {
                    "registry_add"
                }
            }
            13 => "registry_set",
            14 => "registry_rename",
            15 => "create_stream_hash",
            17 | 18 => "pipe_created",
            19..=21 => "wmi_event",
            22 => "dns_query",
            23 | 26 => "file_delete",
            24 => "clipboard_capture",
            25 => "process_tampering",
            29 => "file_executable_detected",
            255 => "sysmon_error",
            _ => return None,
        })
    };
    match channel.to_ascii_lowercase().as_str() {
        "microsoft-windows-sysmon/operational" => sysmon(id),
        "security" if id == 4688 => Some("process_creation"),
        "microsoft-windows-powershell/operational" => match id {
            4104 => Some("ps_script"),
            4103 => Some("ps_module"),
            _ => None,
        },
        "windows powershell" => match id {
            400 => Some("ps_classic_start"),
            600 => Some("ps_classic_provider_start"),
            800 => Some("ps_classic_script"),
            _ => None,
        },
        _ => None,
    }
}

impl EventLogSource {
    pub fn of(document: &Value) -> EventLogSource {
        let stated = |key: &str| {
            document
                .get(key)
                .or_else(|| document.get("logsource").and_then(|l| l.get(key)))
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
        };
        let windows = document.pointer("/Event/System").is_some();
        let channel = document
            .pointer("/Event/System/Channel")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let derived = match (&channel, event_id(document)) {
            (Some(channel), Some(id)) => windows_category(channel, id, document).map(str::to_owned),
            _ => None,
        };
        EventLogSource {
            product: stated("product").or_else(|| windows.then(|| "windows".to_owned())),
            category: stated("category").or(derived),
            service: stated("service"),
            channel,
        }
    }

    /// Whether a rule is to be tested against this event: nothing the event states (or its
    /// Windows channel and id imply) contradicts the rule's logsource.
    pub fn admits(&self, rule: &LogSource) -> bool {
        let agrees = |stated: &Option<String>, wanted: &Option<String>| match (stated, wanted) {
            (Some(stated), Some(wanted)) => stated.eq_ignore_ascii_case(wanted),
            _ => true,
        };
        if !agrees(&self.product, &rule.product) || !agrees(&self.service, &rule.service) {
            return false;
        }
        let category = match (&self.category, &rule.category) {
            (_, None) => true,
            (Some(stated), Some(wanted)) => {
                stated.eq_ignore_ascii_case(wanted)
                    || (wanted == "registry_event" && stated.starts_with("registry_"))
            }
            // A Windows event whose channel implies no category is not one of the derived ones.
            (None, Some(wanted)) => {
                self.channel.is_none() || !DERIVED_CATEGORIES.contains(&wanted.as_str())
            }
        };
        if !category {
            return false;
        }
        match (&self.channel, &rule.service) {
            (Some(channel), Some(wanted)) if self.service.is_none() => WINDOWS_SERVICES
                .iter()
                .find(|(service, _)| service.eq_ignore_ascii_case(wanted))
                .is_none_or(|(_, expected)| channel.eq_ignore_ascii_case(expected)),
            _ => true,
        }
    }
}
