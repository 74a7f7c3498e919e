//! The cluster DNS server on UDP and TCP: authoritative for the cluster domain (NXDOMAIN for
//! names it does not hold), REFUSED for every other name. Messages are read and written with
//! `hickory-proto`.

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::resolver::Resolver;
use super::zone::{Data, Lookup, Zone};

/// Seconds a client may keep an answer (CoreDNS's default for cluster records).
const TTL: u32 = 5;
/// What a UDP answer may take without EDNS.
const CLASSIC_UDP: usize = 512;
/// The EDNS buffer size the server offers.
const EDNS_PAYLOAD: u16 = 1232;
/// Most CNAMEs followed inside the zone for one answer.
const MAX_CHAIN: usize = 8;

/// Answers on `udp` and `tcp` until `shutdown`.
pub async fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    resolver: Resolver,
    shutdown: CancellationToken,
) {
    let udp_loop = serve_udp(udp, resolver.clone());
    let tcp_loop = async {
        loop {
            let stream = match tcp.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    crate::http_limits::after_failed_accept("DNS over TCP", &error).await;
                    continue;
                }
            };
            tokio::spawn(serve_tcp(stream, resolver.clone()));
        }
    };
    tokio::select! {
        _ = udp_loop => {}
        _ = tcp_loop => {}
        _ = shutdown.cancelled() => {}
    }
}

async fn serve_udp(socket: UdpSocket, resolver: Resolver) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let Ok((length, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        if let Some(reply) = reply(&buffer[..length], &resolver, true)
            && let Err(error) = socket.send_to(&reply, peer).await
        {
            tracing::debug!(%error, %peer, "DNS reply not sent");
        }
    }
}

/// One TCP client: length-prefixed messages until it closes.
async fn serve_tcp(mut stream: TcpStream, resolver: Resolver) {
    loop {
        let Ok(length) = stream.read_u16().await else {
            return;
        };
        let mut message = vec![0u8; usize::from(length)];
        if stream.read_exact(&mut message).await.is_err() {
            return;
        }
        let Some(reply) = reply(&message, &resolver, false) else {
            return;
        };
        let Ok(length) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_u16(length).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// The encoded answer to an encoded request; nothing for bytes that are no DNS message.
fn reply(bytes: &[u8], resolver: &Resolver, udp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(bytes).ok()?;
    let mut response = answer(&request, &resolver.zone());
    let limit = match request.extensions() {
        Some(edns) => usize::from(edns.max_payload().max(512)),
        None => CLASSIC_UDP,
    };
    let encoded = response.to_vec().ok()?;
    if !udp || encoded.len() <= limit {
        return Some(encoded);
    }
    // Too big for the datagram: say so, and the client asks again over TCP.
    response.take_answers();
    response.take_additionals();
    response.set_truncated(true);
    response.to_vec().ok()
}

/// The response to `request` from `zone`.
pub fn answer(request: &Message, zone: &Zone) -> Message {
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .add_queries(request.queries().to_vec());
    if request.extensions().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        response.set_edns(edns);
    }
    let query = match request.queries() {
        [query] if request.op_code() == OpCode::Query => query,
        [_] => return refuse(response, ResponseCode::NotImp),
        _ => return refuse(response, ResponseCode::FormErr),
    };
    match zone.lookup(&query.name().to_ascii()) {
        Lookup::Outside => refuse(response, ResponseCode::Refused),
        Lookup::NxDomain => {
            response.set_authoritative(true);
            refuse(response, ResponseCode::NXDomain)
        }
        Lookup::Found(_) => {
            response.set_authoritative(true);
            add_records(&mut response, zone, query);
            response
        }
    }
}

fn refuse(mut response: Message, code: ResponseCode) -> Message {
    response.set_response_code(code);
    response
}

/// The records of the query's name of its type, following CNAMEs inside the zone; SRV
/// targets' addresses go in the additional section.
fn add_records(response: &mut Message, zone: &Zone, query: &Query) {
    let wanted = query.query_type();
    let mut name = query.name().clone();
    for _ in 0..MAX_CHAIN {
        let Lookup::Found(records) = zone.lookup(&name.to_ascii()) else {
            return;
        };
        let mut next = None;
        for data in records {
            let fits = matches!(
                (data, wanted),
                (_, RecordType::ANY)
                    | (Data::A(_), RecordType::A)
                    | (Data::Srv { .. }, RecordType::SRV)
                    | (Data::Cname(_), _)
            );
            if !fits {
                continue;
            }
            let Some(rdata) = rdata(data) else { continue };
            response.add_answer(Record::from_rdata(name.clone(), TTL, rdata));
            match data {
                Data::Cname(target) => next = Name::from_ascii(format!("{target}.")).ok(),
                Data::Srv { target, .. } => add_addresses(response, zone, target),
                Data::A(_) => {}
            }
        }
        match next {
            Some(target) if wanted != RecordType::CNAME => name = target,
            _ => return,
        }
    }
}

/// The A records of an SRV target, as additional records.
fn add_addresses(response: &mut Message, zone: &Zone, target: &str) {
    let (Lookup::Found(records), Ok(name)) =
        (zone.lookup(target), Name::from_ascii(format!("{target}.")))
    else {
        return;
    };
    for data in records {
        if let Data::A(ip) = data {
            response.add_additional(Record::from_rdata(name.clone(), TTL, RData::A(A(*ip))));
        }
    }
}

fn rdata(data: &Data) -> Option<RData> {
    Some(match data {
        Data::A(ip) => RData::A(A(*ip)),
        Data::Cname(target) => RData::CNAME(CNAME(Name::from_ascii(format!("{target}.")).ok()?)),
        Data::Srv { port, target } => {
            let target = Name::from_ascii(format!("{target}.")).ok()?;
            RData::SRV(SRV::new(0, 100, *port, target))
        }
    })
}

/// Binds UDP and TCP on `address`; on port 0, one port free for both.
///
/// # Errors
/// When either cannot be bound.
pub async fn bind(address: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(address).await?;
    let bound = udp.local_addr()?;
    let tcp = TcpListener::bind(bound).await?;
    Ok((udp, tcp))
}
