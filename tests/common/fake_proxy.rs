//! A forward proxy on 127.0.0.1 for the tests of proxies (issue 28): it asks for basic
//! credentials (407 without the right ones) and tunnels `CONNECT` to loopback addresses
//! only. Plain-HTTP requests through it are answered 407 or 502 (it forwards none).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running proxy; stops when dropped.
pub struct FakeProxy {
    addr: SocketAddr,
    /// The status it refuses credentials with: 407, or 401 as tinyproxy 1.11 does.
    /// Requests refused with 407.
    refused: Arc<AtomicUsize>,
    /// Tunnels opened.
    tunnels: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeProxy {
    /// A proxy that lets through only `user:password` (basic authentication), refusing
    /// others with 407.
    pub fn start(user: &str, password: &str) -> FakeProxy {
        Self::start_refusing_with(user, password, 407)
    }

    /// Like [`FakeProxy::start`], refusing with `status` (tinyproxy 1.11 answers 401).
    pub fn start_refusing_with(user: &str, password: &str, status: u16) -> FakeProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("fake proxy: runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("fake proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake proxy: local_addr");
        let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
        let (refused, tunnels) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (r, t) = (Arc::clone(&refused), Arc::clone(&tunnels));
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (expected, r, t) = (expected.clone(), Arc::clone(&r), Arc::clone(&t));
                tokio::spawn(async move {
                    let _ = serve(client, &expected, status, &r, &t).await;
                });
            }
        });
        FakeProxy {
            addr,
            refused,
            tunnels,
            runtime: Some(runtime),
        }
    }

    /// `http://user:password@127.0.0.1:port` for `HTTPS_PROXY`.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

async fn serve(
    mut client: tokio::net::TcpStream,
    expected: &str,
    status: u16,
    refused: &AtomicUsize,
    tunnels: &AtomicUsize,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default().to_owned();
    let authorized = lines.any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("proxy-authorization") && value.trim() == expected
        })
    });
    if !authorized {
        refused.fetch_add(1, Ordering::SeqCst);
        let answer = if status == 407 {
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
        } else {
            format!(
                "HTTP/1.0 {status} Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\nConnection: close\r\n\r\n"
            )
        };
        client.write_all(answer.as_bytes()).await?;
        return Ok(());
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let loopback = target
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    if method != "CONNECT" || !loopback {
        client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    let mut server = tokio::net::TcpStream::connect(target).await?;
    tunnels.fetch_add(1, Ordering::SeqCst);
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    Ok(())
}

/// Standard base64 with padding (for the expected `Proxy-Authorization`).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
