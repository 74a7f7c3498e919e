use super::*;
use serde_json::{Value, json};

fn service(spec: Value) -> Service {
    serde_json::from_value(
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
    )
    .unwrap()
}

fn slice(endpoints: Value) -> EndpointSlice {
    serde_json::from_value(json!({"metadata": {"name": "web-1"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": endpoints}))
    .unwrap()
}

fn found<'a>(zone: &'a Zone, name: &str) -> &'a [Data] {
    match zone.lookup(name) {
        Lookup::Found(data) => data,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_cluster_ip_service_has_an_a_record_and_srv_records_for_named_ports() {
    let mut zone = Zone::new("cluster.local");
    let web = service(
        json!({"clusterIP": "10.96.0.7", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81}]}),
    );
    zone.set_service("default", "web", Some(&web), &[]);
    assert_eq!(
        found(&zone, "web.default.svc.cluster.local."),
        [Data::A(Ipv4Addr::new(10, 96, 0, 7))]
    );
    assert_eq!(
        found(&zone, "WEB.Default.svc.cluster.local"),
        [Data::A(Ipv4Addr::new(10, 96, 0, 7))]
    );
    assert_eq!(
        found(&zone, "_http._tcp.web.default.svc.cluster.local"),
        [Data::Srv {
            port: 80,
            target: "web.default.svc.cluster.local".into()
        }]
    );
    assert_eq!(
        zone.lookup("nope.default.svc.cluster.local"),
        Lookup::NxDomain
    );
    assert_eq!(zone.lookup("example.com"), Lookup::Outside);
    zone.set_service("default", "web", None, &[]);
    assert_eq!(
        zone.lookup("web.default.svc.cluster.local"),
        Lookup::NxDomain
    );
    assert_eq!(
        zone.lookup("_http._tcp.web.default.svc.cluster.local"),
        Lookup::NxDomain
    );
}

#[test]
fn a_headless_service_answers_its_ready_pods_by_address_and_hostname() {
    let mut zone = Zone::new("cluster.local");
    let web = service(json!({"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}));
    let endpoints = slice(json!([
        {"addresses": ["10.244.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
        {"addresses": ["10.244.0.6"], "conditions": {"ready": true}},
        {"addresses": ["10.244.0.7"], "conditions": {"ready": false}},
    ]));
    zone.set_service("default", "web", Some(&web), &[endpoints]);
    assert_eq!(
        found(&zone, "web.default.svc.cluster.local"),
        [
            Data::A(Ipv4Addr::new(10, 244, 0, 5)),
            Data::A(Ipv4Addr::new(10, 244, 0, 6))
        ]
    );
    assert_eq!(
        found(&zone, "db-0.web.default.svc.cluster.local"),
        [Data::A(Ipv4Addr::new(10, 244, 0, 5))]
    );
    assert_eq!(
        found(&zone, "10-244-0-6.web.default.svc.cluster.local"),
        [Data::A(Ipv4Addr::new(10, 244, 0, 6))]
    );
    assert_eq!(
        found(&zone, "_http._tcp.web.default.svc.cluster.local"),
        [
            Data::Srv {
                port: 8080,
                target: "db-0.web.default.svc.cluster.local".into()
            },
            Data::Srv {
                port: 8080,
                target: "10-244-0-6.web.default.svc.cluster.local".into()
            },
        ]
    );
}

#[test]
fn an_external_name_service_is_a_cname() {
    let mut zone = Zone::new("cluster.local.");
    let db = service(json!({"type": "ExternalName", "externalName": "db.example.com."}));
    zone.set_service("default", "db", Some(&db), &[]);
    assert_eq!(
        found(&zone, "db.default.svc.cluster.local"),
        [Data::Cname("db.example.com".into())]
    );
}
