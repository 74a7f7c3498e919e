//! `wasi:sockets/udp` in a pod: binds on the pod's loopback address, datagrams to local pods
//! by their pod IP, sources read back as pod IPs. Datagrams to pods of other nodes are not
//! carried by the tunnel (it is a stream protocol): they are refused as any unreachable
//! address is.

use std::net::SocketAddr;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{IpAddressFamily, IpSocketAddress, Network};
use wasmtime_wasi::p2::bindings::sockets::udp::{
    HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, IncomingDatagram,
    IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};
use wasmtime_wasi::p2::bindings::sockets::udp_create_socket;
use wasmtime_wasi::sockets::WasiSocketsView;

use super::{PodSockets, SocketsView, admit_socket, answer, book_open, host_bind_address};
use crate::node::network::routing::Route;

const UDP: &str = "wasi:sockets/udp@0.2.12";
const UDP_CREATE: &str = "wasi:sockets/udp-create-socket@0.2.12";

impl PodSockets {
    /// Where a datagram to `to` goes on the host; itself when the pod network cannot carry it
    /// (the socket address check then refuses the send).
    fn datagram_target(&self, to: SocketAddr) -> SocketAddr {
        match self.net.route(to) {
            Route::Local(host) => host,
            Route::Tunnel { .. } | Route::Outside(_) | Route::Denied | Route::Refused => to,
        }
    }
}

pub(super) fn add_to_linker<T: SocketsView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.instance(UDP_CREATE)?.func_wrap_async(
        "create-udp-socket",
        |mut store: StoreContextMut<'_, T>, (family,): (IpAddressFamily,)| {
            Box::new(async move {
                let state = store.data_mut();
                if let Err(code) = admit_socket(state, family) {
                    return Ok((Err(code),));
                }
                let mut view = state.sockets();
                let made = udp_create_socket::Host::create_udp_socket(&mut view, family).await;
                book_open(
                    store.data_mut().guest_files(),
                    made.as_ref().ok().map(Resource::rep),
                );
                answer(made)
            })
        },
    )?;
    let mut udp = linker.instance(UDP)?;
    udp.func_wrap_async(
        "[method]udp-socket.start-bind",
        |mut store: StoreContextMut<'_, T>,
         (this, network, address): (Resource<UdpSocket>, Resource<Network>, IpSocketAddress)| {
            Box::new(async move {
                let address = match host_bind_address(store.data_mut(), address) {
                    Ok(address) => address,
                    Err(code) => return Ok((Err(code),)),
                };
                let mut view = store.data_mut().sockets();
                answer(HostUdpSocket::start_bind(&mut view, this, network, address).await)
            })
        },
    )?;
    udp.func_wrap_async(
        "[method]udp-socket.stream",
        |mut store: StoreContextMut<'_, T>,
         (this, remote): (Resource<UdpSocket>, Option<IpSocketAddress>)| {
            Box::new(async move {
                let remote = match (store.data_mut().pod_sockets(), remote) {
                    (Some(pod), Some(to)) => Some(pod.datagram_target(to.into()).into()),
                    (_, remote) => remote,
                };
                let mut view = store.data_mut().sockets();
                answer(HostUdpSocket::stream(&mut view, this, remote).await)
            })
        },
    )?;
    for (name, remote) in [
        ("[method]udp-socket.local-address", false),
        ("[method]udp-socket.remote-address", true),
    ] {
        udp.func_wrap(
            name,
            move |mut store: StoreContextMut<'_, T>, (this,): (Resource<UdpSocket>,)| {
                let state = store.data_mut();
                let mut view = state.sockets();
                let read = if remote {
                    HostUdpSocket::remote_address(&mut view, this)
                } else {
                    HostUdpSocket::local_address(&mut view, this)
                };
                let Some(pod) = state.pod_sockets() else {
                    return answer(read);
                };
                answer(read.map(|host| {
                    let host = SocketAddr::from(host);
                    pod.guest_view(host, !remote || pod.is_own_loopback(host))
                        .into()
                }))
            },
        )?;
    }
    udp.func_wrap(
        "[method]incoming-datagram-stream.receive",
        |mut store: StoreContextMut<'_, T>,
         (this, max): (Resource<IncomingDatagramStream>, u64)| {
            let state = store.data_mut();
            let received = HostIncomingDatagramStream::receive(&mut state.sockets(), this, max);
            let Some(pod) = state.pod_sockets() else {
                return answer(received);
            };
            answer(received.map(|mut datagrams: Vec<IncomingDatagram>| {
                for datagram in &mut datagrams {
                    let from = SocketAddr::from(datagram.remote_address);
                    datagram.remote_address =
                        pod.guest_view(from, pod.is_own_loopback(from)).into();
                }
                datagrams
            }))
        },
    )?;
    udp.func_wrap(
        "[method]outgoing-datagram-stream.send",
        |mut store: StoreContextMut<'_, T>,
         (this, mut datagrams): (Resource<OutgoingDatagramStream>, Vec<OutgoingDatagram>)| {
            let state = store.data_mut();
            if let Some(pod) = state.pod_sockets() {
                for datagram in &mut datagrams {
                    if let Some(to) = datagram.remote_address {
                        datagram.remote_address = Some(pod.datagram_target(to.into()).into());
                    }
                }
            }
            answer(HostOutgoingDatagramStream::send(
                &mut state.sockets(),
                this,
                datagrams,
            ))
        },
    )?;
    udp.resource(
        "udp-socket",
        ResourceType::host::<UdpSocket>(),
        |mut store, rep| {
            HostUdpSocket::drop(&mut store.data_mut().sockets(), Resource::new_own(rep))?;
            store.data_mut().guest_files().closed(rep);
            Ok(())
        },
    )?;
    Ok(())
}
