//! Network helpers: free ports, a TCP proxy that can come and go, a Postgres proxy that counts
//! statements, and URL surgery.

use super::*;

/// A port nothing listens on (bound, read, released).
pub async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Forwards every connection on `port` to `target`, until the handle is aborted: brings a
/// "dead" address to life in the middle of a test. Aborting the handle also cuts every
/// connection it forwards (they live in the task's `JoinSet`), as a crashed server would.
pub async fn start_proxy(port: u16, target: SocketAddr) -> JoinHandle<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("proxy binds");
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
            // Reap finished connections as we go.
            while connections.try_join_next().is_some() {}
        }
    })
}

/// host:port of a URL, resolved (for pointing a proxy at the real service).
pub fn socket_addr_of(url: &str) -> SocketAddr {
    let url = url::Url::parse(url).expect("URL");
    let host = url.host_str().expect("host");
    let port = url.port_or_known_default().expect("port");
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .expect("resolves")
        .next()
        .expect("one address")
}

/// A URL with its port replaced.
pub fn with_port(url: &str, port: u16) -> String {
    let mut url = url::Url::parse(url).expect("URL");
    url.set_port(Some(port)).expect("URL takes a port");
    url.to_string()
}

/// A TCP proxy in front of Postgres that counts the statements clients execute: simple
/// queries (`Q`) and extended-protocol executions (`E`). Needs `sslmode=disable`.
pub async fn counting_proxy(target: std::net::SocketAddr) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a counting proxy");
    let port = listener.local_addr().expect("a counting proxy").port();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let (mut client_read, mut client_write) = inbound.into_split();
                let (mut server_read, mut server_write) = outbound.into_split();
                let upstream = async move {
                    // The startup message has no type byte: a length, then the body.
                    let mut len = [0u8; 4];
                    client_read.read_exact(&mut len).await?;
                    let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                    client_read.read_exact(&mut body).await?;
                    server_write.write_all(&len).await?;
                    server_write.write_all(&body).await?;
                    loop {
                        let mut header = [0u8; 5];
                        client_read.read_exact(&mut header).await?;
                        if matches!(header[0], b'Q' | b'E') {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
                        let mut body = vec![0u8; (len as usize).saturating_sub(4)];
                        client_read.read_exact(&mut body).await?;
                        server_write.write_all(&header).await?;
                        server_write.write_all(&body).await?;
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), std::io::Error>(())
                };
                let downstream = tokio::io::copy(&mut server_read, &mut client_write);
                let _ = tokio::join!(upstream, downstream);
            });
        }
    });
    (port, count)
}
