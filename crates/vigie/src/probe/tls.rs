//! The TLS probe, and the TLS setup the HTTP probe shares with it: rustls on the `ring`
//! provider only, certificates checked against `TrustRoots` (the system's trusted roots by
//! default: an operator's own CA is trusted by adding it there).
//!
//! The probe completes the handshake whatever the certificate: a verifier that records what is
//! wrong (chain, name) instead of failing lets it read an expired, self-signed or misnamed
//! chain and say how many days the certificate has left. Invariants: the handshake's own
//! signatures are always verified (recording applies to the certificate only); the result is
//! CRITICAL whenever the chain or the name is invalid, whatever the days left; an expired
//! certificate has a negative number of days left.

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::time::Instant;
use vigie_core::check::{CheckState, PluginResult, ProbeTarget, Thresholds};
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::perf::{self, PerfItem};
use super::{connect_tcp, finish, millis, resolve, worst};

const LABEL: &str = "TLS";
const DAY_MS: i64 = 86_400_000;
const EXPIRED: &str = "expired";

/// The certificates a chain must lead to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    store: Arc<RootCertStore>,
    /// Why the store is empty or partial, told along with chain errors.
    problem: Option<String>,
}

impl TrustRoots {
    /// The system's trusted roots (`/etc/ssl/certs` and the like, or `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR`), read once per process, off the async workers.
    pub async fn system() -> TrustRoots {
        static SYSTEM: tokio::sync::OnceCell<TrustRoots> = tokio::sync::OnceCell::const_new();
        SYSTEM
            .get_or_init(|| async {
                tokio::task::spawn_blocking(load_system_roots)
                    .await
                    .unwrap_or_else(|error| TrustRoots {
                        store: Arc::new(RootCertStore::empty()),
                        problem: Some(format!(
                            "loading the system's trusted roots failed: {error}"
                        )),
                    })
            })
            .await
            .clone()
    }

    /// Exactly these roots (an internal CA; the tests' own).
    pub fn from_certificates(roots: Vec<CertificateDer<'static>>) -> TrustRoots {
        let mut store = RootCertStore::empty();
        let (_, ignored) = store.add_parsable_certificates(roots);
        TrustRoots {
            store: Arc::new(store),
            problem: (ignored > 0).then(|| format!("{ignored} trusted root(s) could not be read")),
        }
    }
}

fn load_system_roots() -> TrustRoots {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(found.certs);
    let problem = if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        Some(if errors.is_empty() {
            "the system has no trusted root certificates".to_owned()
        } else {
            format!(
                "the system's trusted roots could not be read: {}",
                errors.join("; ")
            )
        })
    } else {
        None
    };
    TrustRoots {
        store: Arc::new(store),
        problem,
    }
}

/// The one crypto provider of the process: ring.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// What a verifier does with a certificate it finds wrong.
#[derive(Debug)]
pub(crate) enum CertificatePolicy {
    /// Fail the handshake, as a browser would.
    Enforce,
    /// Accept it and write down what is wrong.
    Record(Arc<Mutex<CertificateFindings>>),
    /// Accept any certificate (the HTTP probe with `verify_tls: false`).
    AcceptAny,
}

/// What is wrong with a peer's certificate, when anything is.
#[derive(Debug, Default, Clone)]
pub(crate) struct CertificateFindings {
    pub chain: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug)]
struct ProbeVerifier {
    roots: TrustRoots,
    provider: Arc<CryptoProvider>,
    policy: CertificatePolicy,
}

impl ServerCertVerifier for ProbeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if matches!(self.policy, CertificatePolicy::AcceptAny) {
            return Ok(ServerCertVerified::assertion());
        }
        let (chain, name) = match ParsedCertificate::try_from(end_entity) {
            Ok(certificate) => (
                verify_server_cert_signed_by_trust_anchor(
                    &certificate,
                    &self.roots.store,
                    intermediates,
                    now,
                    self.provider.signature_verification_algorithms.all,
                )
                .err(),
                verify_server_name(&certificate, server_name).err(),
            ),
            Err(error) => (Some(error), None),
        };
        match &self.policy {
            CertificatePolicy::Enforce => match chain.or(name) {
                Some(error) => Err(error),
                None => Ok(ServerCertVerified::assertion()),
            },
            CertificatePolicy::Record(findings) => {
                let mut findings = findings
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                findings.chain = chain.map(|error| describe_certificate_error(&error, &self.roots));
                findings.name = name.map(|error| describe_certificate_error(&error, &self.roots));
                Ok(ServerCertVerified::assertion())
            }
            CertificatePolicy::AcceptAny => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration (TLS 1.2 and 1.3, ring) whose certificate checks follow `policy`.
pub(crate) fn client_config(
    roots: &TrustRoots,
    policy: CertificatePolicy,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, String> {
    let provider = crypto_provider();
    let verifier = ProbeVerifier {
        roots: roots.clone(),
        provider: provider.clone(),
        policy,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| format!("cannot configure TLS: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name to send (SNI) and to check the certificate against.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|_| format!("invalid server name {name:?}"))
}

/// A rustls error about a certificate, in an operator's words.
pub(crate) fn describe_certificate_error(error: &rustls::Error, roots: &TrustRoots) -> String {
    let described = match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "issued by an unknown authority (self-signed, an untrusted CA or an incomplete chain)"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => EXPIRED.to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "not valid yet".to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
        ) => {
            // webpki tried a trusted certificate named like the issuer, and its key did not
            // sign this one (Debian's snakeoil "localhost" certificate is such a namesake).
            "issued by an unknown authority (a trusted certificate has its issuer's name but \
             did not sign it)"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
            "not valid for the name asked".to_owned()
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected,
            ..
        }) => format!("not valid for {:?}", expected.to_str()),
        rustls::Error::InvalidCertificate(other) => other.to_string(),
        other => other.to_string(),
    };
    match (&roots.problem, error) {
        (Some(problem), rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            format!("{described}; {problem}")
        }
        _ => described,
    }
}

/// A failed handshake: a certificate error in words, anything else as rustls says it.
pub(crate) fn describe_handshake_error(error: &std::io::Error, roots: &TrustRoots) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => {
            format!("certificate {}", describe_certificate_error(tls, roots))
        }
        Some(tls) => tls.to_string(),
        None => super::describe_io_error(error),
    }
}

/// The options of `Probe::Tls`.
#[derive(Debug, Clone, Copy)]
pub struct TlsProbe<'a> {
    pub port: u16,
    /// The target's hostname (else its address) when absent.
    pub server_name: Option<&'a str>,
    pub days_left: &'a Thresholds,
}

pub async fn check(
    probe: &TlsProbe<'_>,
    target: &ProbeTarget,
    deadline: Instant,
    roots: &TrustRoots,
) -> PluginResult {
    let within = super::time_left(deadline);
    let unknown = |reason: String| finish(LABEL, CheckState::Unknown, reason, Vec::new(), &[]);
    let critical = |reason: String| finish(LABEL, CheckState::Critical, reason, Vec::new(), &[]);
    let name = probe.server_name.filter(|name| !name.is_empty()).unwrap_or(
        if target.hostname.is_empty() {
            &target.address
        } else {
            &target.hostname
        },
    );
    let sni = match server_name(name) {
        Ok(sni) => sni,
        Err(reason) => return unknown(reason),
    };
    let findings = Arc::new(Mutex::new(CertificateFindings::default()));
    let config = match client_config(roots, CertificatePolicy::Record(findings.clone()), &[]) {
        Ok(config) => config,
        Err(reason) => return unknown(reason),
    };
    let addresses = match resolve(&target.address, probe.port).await {
        Ok(addresses) => addresses,
        Err(reason) => return critical(reason),
    };
    let (stream, address, _) = match connect_tcp(&addresses).await {
        Ok(connected) => connected,
        Err(reason) => return critical(reason),
    };
    let started = Instant::now();
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = match tokio::time::timeout_at(deadline, connector.connect(sni, stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            let reason = describe_handshake_error(&error, roots);
            return critical(format!("TLS handshake with {address} failed: {reason}"));
        }
        Err(_) => {
            return critical(format!(
                "TLS handshake with {address} not done within {within}"
            ));
        }
    };
    let handshake = started.elapsed();
    let (_, connection) = tls.get_ref();
    let chain: Vec<CertificateDer<'static>> = connection
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|der| der.clone().into_owned())
        .collect();
    let protocol = connection
        .protocol_version()
        .map(|version| format!("{version:?}"))
        .unwrap_or_default();
    let cipher = connection
        .negotiated_cipher_suite()
        .map(|suite| format!("{:?}", suite.suite()))
        .unwrap_or_default();
    drop(tls);
    let findings = findings
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();

    let mut long_output = vec![format!(
        "{protocol} {cipher} with {address}, handshake in {}",
        millis(handshake)
    )];
    for (index, der) in chain.iter().enumerate() {
        long_output.push(match read_certificate(der) {
            Ok(read) => read.describe(index),
            Err(reason) => format!("certificate {index}: {reason}"),
        });
    }
    let handshake_perf = PerfItem::new("time", Some(handshake.as_secs_f64()), "s").min(0.0);

    let leaf = match chain.first().map(read_certificate) {
        Some(Ok(leaf)) => leaf,
        Some(Err(reason)) => {
            let summary = format!("cannot read the certificate of {name:?}: {reason}");
            return finish(
                LABEL,
                CheckState::Unknown,
                summary,
                long_output,
                &[handshake_perf],
            );
        }
        None => {
            let summary = format!("{address} sent no certificate");
            return finish(
                LABEL,
                CheckState::Critical,
                summary,
                long_output,
                &[handshake_perf],
            );
        }
    };
    let days_left = (leaf.not_after_ms - crate::clock::now_ms()).div_euclid(DAY_MS);
    let mut state = perf::evaluate(days_left as f64, probe.days_left);
    let mut summary = format!(
        "certificate for {name:?} {} ({})",
        describe_expiry(leaf.not_after_ms - crate::clock::now_ms()),
        format_date(leaf.not_after_ms)
    );
    if let Some(chain_problem) = &findings.chain {
        state = worst(state, CheckState::Critical);
        // An expired certificate has said so already.
        if !(days_left < 0 && chain_problem == EXPIRED) {
            summary.push_str(&format!("; chain invalid: {chain_problem}"));
        }
    }
    if let Some(name_problem) = &findings.name {
        state = worst(state, CheckState::Critical);
        summary.push_str(&format!("; name invalid: {name_problem}"));
        if !leaf.names.is_empty() {
            summary.push_str(&format!(" (it names {})", leaf.names.join(", ")));
        }
    }
    let perfdata = [
        PerfItem::new("days_left", Some(days_left as f64), "").thresholds(probe.days_left, 1.0),
        handshake_perf,
    ];
    finish(LABEL, state, summary, long_output, &perfdata)
}

/// What the probe reports of one certificate.
struct CertificateSummary {
    subject: String,
    issuer: String,
    not_before_ms: i64,
    not_after_ms: i64,
    names: Vec<String>,
}

impl CertificateSummary {
    fn describe(&self, index: usize) -> String {
        let mut text = format!(
            "certificate {index}: subject {}, issuer {}, valid {} to {}",
            self.subject,
            self.issuer,
            format_date(self.not_before_ms),
            format_date(self.not_after_ms)
        );
        if !self.names.is_empty() {
            text.push_str(&format!(", names {}", self.names.join(" ")));
        }
        text
    }
}

fn read_certificate(der: &CertificateDer<'_>) -> Result<CertificateSummary, String> {
    let certificate =
        Certificate::from_der(der.as_ref()).map_err(|error| format!("malformed: {error}"))?;
    let tbs = certificate.tbs_certificate();
    let millis_of = |time: x509_cert::time::Time| {
        i64::try_from(time.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
    };
    let mut names = Vec::new();
    if let Ok(Some((_, SubjectAltName(general_names)))) = tbs.get_extension::<SubjectAltName>() {
        for general_name in general_names {
            match general_name {
                GeneralName::DnsName(dns) => names.push(dns.as_str().to_owned()),
                GeneralName::IpAddress(octets) => {
                    let bytes = octets.as_bytes();
                    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
                        names.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
                        names.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertificateSummary {
        subject: tbs.subject().to_string(),
        issuer: tbs.issuer().to_string(),
        not_before_ms: millis_of(tbs.validity().not_before),
        not_after_ms: millis_of(tbs.validity().not_after),
        names,
    })
}

/// `expires in 29 days`, `expires in less than a day`, `expired 3 days ago`: whole days that
/// have passed or are left (the perfdata's `days_left` is the floor: -1 once expired).
fn describe_expiry(left_ms: i64) -> String {
    let whole_days = left_ms.abs() / DAY_MS;
    let span = match whole_days {
        0 => "less than a day".to_owned(),
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    };
    if left_ms < 0 {
        format!("expired {span} ago")
    } else {
        format!("expires in {span}")
    }
}

fn format_date(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms)
        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{epoch_ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_count_whole_days_and_go_negative_after_expiry() {
        let now = 1_800_000_000_000_i64;
        let left = |not_after: i64| (not_after - now).div_euclid(DAY_MS);
        assert_eq!(left(now + 29 * DAY_MS + 5), 29);
        assert_eq!(left(now + DAY_MS - 1), 0);
        assert_eq!(left(now - 1), -1);
        assert_eq!(left(now - 3 * DAY_MS), -3);
        assert_eq!(describe_expiry(29 * DAY_MS + 5), "expires in 29 days");
        assert_eq!(describe_expiry(DAY_MS + 5), "expires in 1 day");
        assert_eq!(describe_expiry(5), "expires in less than a day");
        assert_eq!(describe_expiry(-5), "expired less than a day ago");
        assert_eq!(describe_expiry(-3 * DAY_MS - 5), "expired 3 days ago");
    }

    #[test]
    fn certificate_errors_read_as_sentences() {
        let roots = TrustRoots::from_certificates(Vec::new());
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(
            describe_certificate_error(&unknown, &roots)
                .starts_with("issued by an unknown authority")
        );
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("wrong.example").unwrap(),
            presented: vec!["DnsName(\"localhost\")".to_owned()],
        });
        assert_eq!(
            describe_certificate_error(&name, &roots),
            "not valid for \"wrong.example\""
        );
    }

    #[test]
    fn server_names_may_be_names_or_addresses() {
        assert!(matches!(
            server_name("localhost"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(server_name("bad name!").is_err());
    }
}
