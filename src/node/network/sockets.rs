//! The guest's `wasi:sockets`, shadowing wasmtime-wasi's in the linker and delegating to them
//! with addresses rewritten: what a guest binds lands on its pod's loopback address, what it
//! dials goes where the pod's router says, and the addresses it reads back are the ones a pod
//! in Kubernetes would see (`127.0.0.1` inside the pod, pod IPs outside it). Every socket is
//! one of the pod's open files.
//!
//! Only the functions that carry addresses or make sockets are replaced; the rest of each
//! interface stays wasmtime-wasi's. The overrides are keyed by the one version wasmtime-wasi 48
//! defines, which guests importing any 0.2.x resolve to: a newer wasmtime would leave them in an
//! instance no guest sees, and the pod-network tests (two pods binding one port) would fail.

mod lookup;
mod udp;

pub use lookup::ResolvedAddresses;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::SocketResult;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{HostTcpSocket, TcpSocket};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::sockets::WasiSocketsView;

use super::routing::Route;
use super::{DialError, PodNet};
use crate::node::limits::GuestFiles;

const TCP: &str = "wasi:sockets/tcp@0.2.12";
const TCP_CREATE: &str = "wasi:sockets/tcp-create-socket@0.2.12";

type Answer<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

/// A guest's place in its pod's network.
pub struct PodSockets {
    net: PodNet,
    /// TCP sockets connected through a tunnel, by resource rep: the pod address the guest
    /// dialled (the socket itself is connected to the egress listener).
    tunneled: HashMap<u32, SocketAddr>,
}

impl PodSockets {
    pub fn new(net: PodNet) -> PodSockets {
        PodSockets {
            net,
            tunneled: HashMap::new(),
        }
    }

    pub fn net(&self) -> &PodNet {
        &self.net
    }

    /// The host address a guest binding `guest` gets: its pod's loopback address at that port,
    /// for any address that means the pod; `None` for any other.
    fn bind_address(&self, guest: SocketAddr) -> Option<SocketAddr> {
        let pod = &self.net.address;
        pod.is_own(guest.ip()).then(|| pod.on_host(guest.port()))
    }

    /// A host address as the guest reads it; `local`: the other end is in the pod too.
    fn guest_view(&self, host: SocketAddr, local: bool) -> SocketAddr {
        self.net.address.guest_view(host, local)
    }

    fn is_own_loopback(&self, address: SocketAddr) -> bool {
        address.ip() == IpAddr::V4(self.net.address.loopback)
    }
}

/// Store data whose guests get the pod network.
pub trait SocketsView: WasiView + 'static {
    /// The guest's pod network; `None` for a guest with no network (every socket call is
    /// then refused by wasmtime-wasi, which has TCP and UDP off).
    fn pod_sockets(&mut self) -> Option<&mut PodSockets>;
    /// The open files the guest's sockets count towards.
    fn guest_files(&mut self) -> &mut GuestFiles;
}

/// Replaces the address-carrying and socket-making functions of `wasi:sockets` in `linker`
/// (after wasmtime-wasi added its own).
///
/// # Errors
/// When wasmtime refuses a definition.
pub fn add_to_linker<T: SocketsView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    add_tcp(linker)?;
    udp::add_to_linker(linker)?;
    lookup::add_to_linker(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn add_tcp<T: SocketsView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.instance(TCP_CREATE)?.func_wrap(
        "create-tcp-socket",
        |mut store: StoreContextMut<'_, T>, (family,): (IpAddressFamily,)| {
            let state = store.data_mut();
            if let Err(code) = admit_socket(state, family) {
                return Ok((Err(code),));
            }
            let made = tcp_create_socket::Host::create_tcp_socket(&mut state.sockets(), family);
            book_open(state.guest_files(), made.as_ref().ok().map(Resource::rep));
            answer(made)
        },
    )?;
    let mut tcp = linker.instance(TCP)?;
    tcp.func_wrap_async(
        "[method]tcp-socket.start-bind",
        |mut store: StoreContextMut<'_, T>,
         (this, network, address): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress)| {
            Box::new(async move {
                let address = match host_bind_address(store.data_mut(), address) {
                    Ok(address) => address,
                    Err(code) => return Ok((Err(code),)),
                };
                let mut view = store.data_mut().sockets();
                answer(HostTcpSocket::start_bind(&mut view, this, network, address).await)
            })
        },
    )?;
    tcp.func_wrap_async(
        "[method]tcp-socket.start-connect",
        |mut store: StoreContextMut<'_, T>,
         (this, network, address): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress)| {
            Box::new(async move { start_connect(&mut store, this, network, address).await })
        },
    )?;
    tcp.func_wrap(
        "[method]tcp-socket.local-address",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<TcpSocket>,)| {
            read_address(store.data_mut(), this, Side::Local)
        },
    )?;
    tcp.func_wrap(
        "[method]tcp-socket.remote-address",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<TcpSocket>,)| {
            read_address(store.data_mut(), this, Side::Remote)
        },
    )?;
    tcp.func_wrap(
        "[method]tcp-socket.accept",
        |mut store: StoreContextMut<'_, T>, (this,): (Resource<TcpSocket>,)| {
            let state = store.data_mut();
            if state.guest_files().reserve().is_err() {
                return Ok((Err(ErrorCode::NewSocketLimit),));
            }
            let accepted = HostTcpSocket::accept(&mut state.sockets(), this);
            book_open(
                state.guest_files(),
                accepted.as_ref().ok().map(|(socket, ..)| socket.rep()),
            );
            answer(accepted)
        },
    )?;
    tcp.resource(
        "tcp-socket",
        ResourceType::host::<TcpSocket>(),
        |mut store, rep| {
            HostTcpSocket::drop(&mut store.data_mut().sockets(), Resource::new_own(rep))?;
            let state = store.data_mut();
            state.guest_files().closed(rep);
            if let Some(pod) = state.pod_sockets() {
                pod.tunneled.remove(&rep);
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// Connects a guest's TCP socket where its pod's router sends `address`: straight to a local
/// pod, or to the egress listener once the tunnel to the other node is open. The socket is
/// bound to the pod's loopback address first, so the other end sees this pod.
async fn start_connect<T: SocketsView>(
    store: &mut StoreContextMut<'_, T>,
    this: Resource<TcpSocket>,
    network: Resource<Network>,
    address: IpSocketAddress,
) -> Answer<()> {
    let Some(net) = store.data_mut().pod_sockets().map(|p| p.net.clone()) else {
        let mut view = store.data_mut().sockets();
        return answer(HostTcpSocket::start_connect(
            &mut view, this, network, address,
        ));
    };
    let to = SocketAddr::from(address);
    let route = net.route(to);
    match route {
        Route::Denied => return Ok((Err(ErrorCode::AccessDenied),)),
        Route::Refused => return Ok((Err(ErrorCode::ConnectionRefused),)),
        // Out from the host's address: the pod's loopback one cannot leave the host.
        Route::Outside(host) => {
            let mut view = store.data_mut().sockets();
            return answer(HostTcpSocket::start_connect(
                &mut view,
                this,
                network,
                host.into(),
            ));
        }
        Route::Local(_) | Route::Tunnel { .. } => {}
    }
    let from = match bind_to_pod(store, &this, &network, &net).await {
        Ok(from) => from,
        Err(error) => return answer(Err(error)),
    };
    let host = match route {
        Route::Local(host) => host,
        Route::Tunnel { node, target } => match net.tunnel_for_socket(&node, target, from).await {
            Ok(egress) => {
                if let Some(pod) = store.data_mut().pod_sockets() {
                    pod.tunneled.insert(this.rep(), target);
                }
                egress
            }
            Err(error) => return Ok((Err(error_code(&error)),)),
        },
        Route::Outside(_) | Route::Denied | Route::Refused => {
            return Ok((Err(ErrorCode::AccessDenied),));
        }
    };
    let mut view = store.data_mut().sockets();
    answer(HostTcpSocket::start_connect(
        &mut view,
        this,
        network,
        host.into(),
    ))
}

/// Whether the guest may make one more socket of `family`: not an IPv6 one in a pod
/// (`not-supported`), nor one past its pod's open files (`new-socket-limit`); the file is
/// reserved.
pub(super) fn admit_socket<T: SocketsView>(
    state: &mut T,
    family: IpAddressFamily,
) -> Result<(), ErrorCode> {
    // IPv6 loopback cannot be split per pod: `::1` must never mean the host's.
    if family == IpAddressFamily::Ipv6 && state.pod_sockets().is_some() {
        return Err(ErrorCode::NotSupported);
    }
    state
        .guest_files()
        .reserve()
        .map_err(|_| ErrorCode::NewSocketLimit)
}

/// Where a socket the guest binds at `address` is bound on the host: its pod's loopback address
/// for any address that means the pod, `address-not-bindable` for any other.
pub(super) fn host_bind_address<T: SocketsView>(
    state: &mut T,
    address: IpSocketAddress,
) -> Result<IpSocketAddress, ErrorCode> {
    match state.pod_sockets() {
        None => Ok(address),
        Some(pod) => pod
            .bind_address(address.into())
            .map(IpSocketAddress::from)
            .ok_or(ErrorCode::AddressNotBindable),
    }
}

/// Binds the socket to the pod's loopback address (any port) unless the guest bound it;
/// returns its host address.
async fn bind_to_pod<T: SocketsView>(
    store: &mut StoreContextMut<'_, T>,
    this: &Resource<TcpSocket>,
    network: &Resource<Network>,
    net: &PodNet,
) -> SocketResult<SocketAddr> {
    let mut view = store.data_mut().sockets();
    if let Ok(bound) = HostTcpSocket::local_address(&mut view, borrow(this)) {
        return Ok(bound.into());
    }
    let any_port = net.address.on_host(0).into();
    HostTcpSocket::start_bind(&mut view, borrow(this), borrow(network), any_port).await?;
    HostTcpSocket::finish_bind(&mut view, borrow(this))?;
    Ok(HostTcpSocket::local_address(&mut view, borrow(this))?.into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Local,
    Remote,
}

/// A TCP socket's local or remote address as the guest sees it.
fn read_address<T: SocketsView>(
    state: &mut T,
    this: Resource<TcpSocket>,
    side: Side,
) -> Answer<IpSocketAddress> {
    let (tunneled_to, view_of) = match state.pod_sockets() {
        Some(pod) => (
            pod.tunneled.get(&this.rep()).copied(),
            Some((pod.net.address.loopback, pod.net.address.clone())),
        ),
        None => (None, None),
    };
    let mut sockets = state.sockets();
    let peer = HostTcpSocket::remote_address(&mut sockets, borrow(&this));
    let read = match side {
        Side::Local => HostTcpSocket::local_address(&mut sockets, this),
        Side::Remote => peer
            .as_ref()
            .map(|p| *p)
            .map_err(|_| ErrorCode::InvalidState.into()),
    };
    let Some((loopback, pod)) = view_of else {
        return answer(read);
    };
    let peer: Option<SocketAddr> = peer.ok().map(Into::into);
    let peer_in_pod = peer.is_none_or(|p| p.ip() == IpAddr::V4(loopback));
    answer(read.map(|host| {
        let host = SocketAddr::from(host);
        let seen = match (side, tunneled_to) {
            (Side::Remote, Some(target)) => target,
            (Side::Local, Some(_)) => pod.guest_view(host, false),
            (_, None) => pod.guest_view(host, peer_in_pod),
        };
        seen.into()
    }))
}

/// Books the socket a guest opened (`Some(rep)`) against its files, or returns the
/// reservation of one it failed to open.
fn book_open(files: &mut GuestFiles, rep: Option<u32>) {
    match rep {
        Some(rep) => files.opened(rep),
        None => files.unreserve(),
    }
}

/// The guest's error code for a connection the pod network did not make.
fn error_code(error: &DialError) -> ErrorCode {
    match error {
        DialError::Denied(_) => ErrorCode::AccessDenied,
        DialError::Refused(_) => ErrorCode::ConnectionRefused,
        DialError::Unreachable { .. } => ErrorCode::RemoteUnreachable,
        DialError::Io { source, .. } => ErrorCode::from(source),
    }
}

/// A socket result as the guest gets it: an error code, or a trap for anything else.
fn answer<T>(result: SocketResult<T>) -> Answer<T> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(error) => Ok((Err(error.downcast()?),)),
    }
}

/// A second handle on a resource the call holds (table lookups use only the rep).
fn borrow<R: 'static>(resource: &Resource<R>) -> Resource<R> {
    Resource::new_borrow(resource.rep())
}
