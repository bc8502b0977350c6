//! Bench-only echo server: `coffer-bench-echo ADDR BODY_FILE`. Answers every request with
//! status 200, `Content-Type: application/json` and the bytes of BODY_FILE. Same runtime
//! stack as Coffer (tokio multi-thread, hyper HTTP/1.1 with keep-alive), no routing, no auth,
//! no storage: the ceiling a Vault-compatible read path can approach on this machine.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18299".into());
    let body = match args.next() {
        Some(p) => Bytes::from(std::fs::read(&p).expect("cannot read the body file")),
        None => Bytes::from_static(b"{}"),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("cannot bind");
    println!("echo listening on {addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    let mut resp = Response::new(Full::new(body));
                    resp.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
