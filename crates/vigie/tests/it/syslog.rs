//! Syslog over real sockets into the pipeline: the sender is mapped to its client and asset,
//! and a line that does not parse is kept, flagged, never dropped.

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::on_both_engines;
use crate::support::{TestServer, eventually};

on_both_engines!(syslog_lines_become_events_of_the_sending_asset);

async fn events_matching(server: &TestServer, query: &str, count: usize) -> Vec<Value> {
    eventually(&format!("{count} events for {query}"), || async {
        let (_, body) = server
            .get(&server.admin, &format!("/api/v1/events?{query}"))
            .await;
        let events = body["events"].as_array().cloned().unwrap_or_default();
        (events.len() >= count).then_some(events)
    })
    .await
}

async fn syslog_lines_become_events_of_the_sending_asset(server: &TestServer) {
    let udp_addr = server.server().syslog_udp.unwrap();
    let tcp_addr = server.server().syslog_tcp.unwrap();

    // RFC 3164 over UDP from a hostname of the estate, at error severity (<11> = user.err).
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(
        b"<11>Nov 27 10:15:00 lyo-erp-app01 erp[311]: order queue stalled",
        udp_addr,
    )
    .await
    .unwrap();
    let events = events_matching(server, "client=acme-industrie&source=syslog", 1).await;
    assert_eq!(events[0]["asset"], "lyo-erp-app01");
    assert_eq!(events[0]["severity"], "error");
    assert_eq!(events[0]["message"], "order queue stalled");
    assert_eq!(events[0]["fields"]["appname"], "erp");
    // error severity: the built-in rule raises an alert on the asset.
    eventually("an incident for lyo-erp-app01", || async {
        let (_, body) = server
            .get(&server.admin, "/api/v1/incidents?client=acme-industrie")
            .await;
        body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["assets"][0] == "lyo-erp-app01")
            .then_some(())
    })
    .await;

    // RFC 5424 over TCP, octet-counted then newline-framed, from a bellevue FQDN.
    let mut tcp = TcpStream::connect(tcp_addr).await.unwrap();
    let framed = "<165>1 2026-11-27T10:15:00.003Z bel-nas01.bellevue.local smartd - ID47 [disk@32473 slot=\"3\"] disk 3 failing";
    let mut wire = format!("{} {framed}", framed.len()).into_bytes();
    wire.extend_from_slice(b"<14>1 2026-11-27T10:15:01Z bel-fw01 fw - - - policy reloaded\n");
    // And a line that is no syslog at all, from the same (unmapped) peer.
    wire.extend_from_slice(b"\x00\x01 garbage from a confused sender\n");
    tcp.write_all(&wire).await.unwrap();
    tcp.shutdown().await.unwrap();

    let events = events_matching(server, "client=bellevue-clinic&source=syslog", 2).await;
    let nas = events
        .iter()
        .find(|e| e["asset"] == "bel-nas01")
        .expect("the NAS line");
    assert_eq!(nas["time_ms"], 1_795_774_500_003i64);
    assert_eq!(nas["fields"]["sd"]["disk@32473"]["slot"], "3");
    assert!(
        events
            .iter()
            .any(|e| e["asset"] == "bel-fw01" && e["message"] == "policy reloaded")
    );

    let unparsed = events_matching(server, "client=_unmapped", 1).await;
    assert_eq!(unparsed[0]["unparsed"], true);
    assert!(
        unparsed[0]["raw"]
            .as_str()
            .unwrap()
            .contains("garbage from a confused sender")
    );
}
