//! A TCP proxy in front of PostgreSQL for the storage tests (included with `#[path]`).
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One proxied connection: the client's socket, the one to PostgreSQL, and whether it is a
/// black hole (nothing forwarded either way, and neither end told when the other closes).
struct Conn {
    client: TcpStream,
    server: TcpStream,
    /// The local port of the socket to PostgreSQL: `client_port` in `pg_stat_activity`.
    upstream_port: u16,
    frozen: Arc<AtomicBool>,
}

/// A TCP proxy in front of PostgreSQL that the test can cut (closing every connection and
/// refusing new ones) and restore: the database "goes away" without stopping the shared server.
/// It can also turn one connection into a black hole: a network partition as that connection's
/// client sees it (its requests go unanswered, and it never hears that the server closed it).
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Conn>>>,
}

impl Proxy {
    pub fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for c in listener.incoming() {
                let Ok(client) = c else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else { continue };
                let frozen = Arc::new(AtomicBool::new(false));
                conns2.lock().unwrap().push(Conn {
                    client: client.try_clone().unwrap(),
                    server: server.try_clone().unwrap(),
                    upstream_port: server.local_addr().unwrap().port(),
                    frozen: frozen.clone(),
                });
                for (mut a, mut b) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    let frozen = frozen.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            match a.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if frozen.load(Ordering::SeqCst) {
                                        continue;
                                    }
                                    if b.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        if !frozen.load(Ordering::SeqCst) {
                            let _ = b.shutdown(std::net::Shutdown::Both);
                        }
                    });
                }
            }
        });
        Proxy { port, up, conns }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.frozen.store(false, Ordering::SeqCst);
            let _ = c.client.shutdown(std::net::Shutdown::Both);
            let _ = c.server.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Partitions the one connection whose socket to PostgreSQL has local port `upstream_port`
    /// (PostgreSQL's `client_port` for that backend): from now on nothing passes either way, and
    /// its client is not told when PostgreSQL closes it. False when no such connection is proxied.
    pub fn black_hole(&self, upstream_port: u16) -> bool {
        let conns = self.conns.lock().unwrap();
        let Some(c) = conns.iter().find(|c| c.upstream_port == upstream_port) else { return false };
        c.frozen.store(true, Ordering::SeqCst);
        true
    }
}

/// `postgres://user:pw@host:port/db` → the same URL through a new proxy, and the proxy.
pub fn proxied(url: &str) -> (String, Proxy) {
    let (userinfo, rest) = url.trim_start_matches("postgres://").rsplit_once('@').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(hostport.to_string());
    (format!("postgres://{userinfo}@127.0.0.1:{}/{db}", proxy.port), proxy)
}
