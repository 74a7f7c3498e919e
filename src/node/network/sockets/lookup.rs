//! `wasi:sockets/ip-name-lookup` in a pod: names are answered by the pod's resolver (the node's
//! hosts, later cluster DNS), never by the host's — a guest learns nothing of the host's
//! network by asking. The whole interface is replaced (its stream resource too), so a name
//! may stand for any number of addresses.

use std::net::IpAddr;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::sockets::WasiSocketsView;

use super::SocketsView;

const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
/// Longest name a lookup takes (DNS's limit).
const MAX_NAME_BYTES: usize = 253;

/// The answer to one lookup, handed out an address at a time.
pub struct ResolvedAddresses {
    addresses: std::vec::IntoIter<IpAddr>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for ResolvedAddresses {
    /// The answer is known when the stream is made.
    async fn ready(&mut self) {}
}

pub(super) fn add_to_linker<T: SocketsView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut lookup = linker.instance(IP_NAME_LOOKUP)?;
    lookup.resource(
        "resolve-address-stream",
        ResourceType::host::<ResolvedAddresses>(),
        |mut store, rep| {
            let stream = Resource::<ResolvedAddresses>::new_own(rep);
            store.data_mut().sockets().table.delete(stream)?;
            Ok(())
        },
    )?;
    lookup.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, T>, (network, name): (Resource<Network>, String)| {
            let state = store.data_mut();
            // The network handle is the capability to look names up: it must be a live one.
            state.sockets().table.get(&network)?;
            let answer = match state.pod_sockets() {
                None => Err(ErrorCode::PermanentResolverFailure),
                Some(_) if !is_valid_name(&name) => Err(ErrorCode::InvalidArgument),
                Some(pod) => pod.net().resolve(&name).ok_or(ErrorCode::NameUnresolvable),
            };
            let stream = match answer {
                Ok(addresses) => ResolvedAddresses {
                    addresses: addresses.into_iter(),
                },
                Err(code) => return Ok((Err(code),)),
            };
            Ok((Ok(state.sockets().table.push(stream)?),))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<ResolvedAddresses>,)| {
            let stream = store.data_mut().sockets().table.get_mut(&this)?;
            let next: Option<IpAddress> = stream.addresses.next().map(Into::into);
            Ok((Ok::<_, ErrorCode>(next),))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<ResolvedAddresses>,)| {
            let pollable: Resource<DynPollable> =
                subscribe(store.data_mut().sockets().table, this)?;
            Ok((pollable,))
        },
    )?;
    Ok(())
}

/// An IP literal, or a name of DNS labels (letters, digits, `-`, `_`).
fn is_valid_name(name: &str) -> bool {
    if name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals_are_valid_and_junk_is_not() {
        for good in [
            "localhost",
            "web-1",
            "svc.ns.svc.cluster.local.",
            "10.0.0.1",
            "[::1]",
        ] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", ".", "a..b", "with space", &"x".repeat(64), "é.com"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
