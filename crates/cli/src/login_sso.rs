//! `login -method=jwt|oidc|kubernetes`: the logins that present a token from elsewhere, and the
//! OIDC browser flow with its local listener (as `bao login -method=oidc` runs it).

use crate::client::Client;
use crate::{api_in, Fail};
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

type R = Result<Value, Fail>;

fn cfg<'a>(config: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    config.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn auth_err(m: &str) -> Fail {
    Fail::Exit(2, format!("Error authenticating: {m}"))
}

/// `login -method=jwt role=R jwt=T`.
pub(crate) fn jwt(c: &Client, mount: &str, config: &Map<String, Value>) -> R {
    let token = cfg(config, "jwt").ok_or_else(|| auth_err("'jwt' must be specified"))?;
    let mut body = json!({ "jwt": token });
    if let Some(role) = cfg(config, "role") {
        body["role"] = role.into();
    }
    Ok(c.with_token(None)
        .request("PUT", &format!("auth/{mount}/login"), Some(&body))
        .map_err(api_in("Error authenticating"))?
        .unwrap_or(Value::Null))
}

/// `login -method=kubernetes role=R [jwt=T]`: without `jwt`, the pod's own service-account
/// token is read from where Kubernetes mounts it.
pub(crate) fn kubernetes(c: &Client, mount: &str, config: &Map<String, Value>) -> R {
    let role = cfg(config, "role").ok_or_else(|| auth_err("'role' must be specified"))?;
    let token = match cfg(config, "jwt") {
        Some(t) => t.to_string(),
        None => {
            let path = "/var/run/secrets/kubernetes.io/serviceaccount/token";
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| auth_err(&format!("no 'jwt' given and {path} cannot be read: {e}")))?
        }
    };
    Ok(c.with_token(None)
        .request("PUT", &format!("auth/{mount}/login"), Some(&json!({ "role": role, "jwt": token })))
        .map_err(api_in("Error authenticating"))?
        .unwrap_or(Value::Null))
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn unpct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            x => out.push(x),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn client_nonce() -> Result<String, Fail> {
    let mut b = [0u8; 20];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| Fail::Local(format!("cannot read /dev/urandom: {e}")))?,
        &mut b,
    )
    .map_err(|e| Fail::Local(format!("cannot read /dev/urandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

const DONE_PAGE: &str = "<!doctype html><html><head><title>Coffer</title></head><body>\
<h1>Signed in</h1><p>You can close this window and return to the terminal.</p></body></html>";

/// `login -method=oidc [role=R] [port=8250] [listenaddress=localhost] [callbackhost=localhost]
/// [callbackport=PORT] [callbackmethod=http] [skip_browser=false]`.
pub(crate) fn oidc(c: &Client, mount: &str, config: &Map<String, Value>) -> R {
    let port = cfg(config, "port").unwrap_or("8250");
    let listen = cfg(config, "listenaddress").unwrap_or("localhost");
    let host = cfg(config, "callbackhost").unwrap_or("localhost");
    let method = cfg(config, "callbackmethod").unwrap_or("http");
    let cb_port = cfg(config, "callbackport").unwrap_or(port);
    let skip_browser = cfg(config, "skip_browser").is_some_and(|v| matches!(v, "true" | "1" | "t" | "yes"));
    let redirect_uri = format!("{method}://{host}:{cb_port}/oidc/callback");
    // "localhost" is bound as 127.0.0.1: browsers reach localhost there first.
    let bind_host = if listen == "localhost" { "127.0.0.1" } else { listen };
    let listener = TcpListener::bind(format!("{bind_host}:{port}"))
        .map_err(|e| auth_err(&format!("cannot listen on {listen}:{port} for the OIDC callback: {e}")))?;
    let nonce = client_nonce()?;
    let mut body = json!({ "redirect_uri": redirect_uri, "client_nonce": nonce });
    if let Some(role) = cfg(config, "role") {
        body["role"] = role.into();
    }
    let answer = c
        .with_token(None)
        .request("PUT", &format!("auth/{mount}/oidc/auth_url"), Some(&body))
        .map_err(api_in("Error authenticating"))?;
    let url = answer
        .as_ref()
        .and_then(|a| a.pointer("/data/auth_url"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| auth_err("the server returned no auth_url: check the role and its allowed_redirect_uris"))?
        .to_string();
    eprintln!("Complete the login via your OIDC provider. Launching browser to:\n\n    {url}\n\n");
    if !skip_browser {
        let _ = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    eprintln!("Waiting for OIDC authentication to complete...");
    let deadline = Instant::now() + Duration::from_secs(120);
    listener.set_nonblocking(true).map_err(|e| Fail::Local(e.to_string()))?;
    loop {
        if Instant::now() > deadline {
            return Err(auth_err("timed out waiting for the OIDC provider's redirect"));
        }
        let (mut stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(auth_err(&format!("OIDC callback listener failed: {e}"))),
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut line = String::new();
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| Fail::Local(e.to_string()))?);
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        // Drain the headers.
        let mut h = String::new();
        while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
            h.clear();
        }
        let target = line.split_whitespace().nth(1).unwrap_or_default().to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != "/oidc/callback" {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            continue;
        }
        let params: Map<String, Value> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (unpct(k), Value::String(unpct(v))))
            .collect();
        let mut q = format!("client_nonce={}", pct(&nonce));
        for k in ["state", "code", "id_token", "error", "error_description"] {
            if let Some(v) = params.get(k).and_then(Value::as_str) {
                q.push_str(&format!("&{k}={}", pct(v)));
            }
        }
        let result = c.with_token(None).request("GET", &format!("auth/{mount}/oidc/callback?{q}"), None);
        let (status, page) = match &result {
            Ok(_) => ("200 OK", DONE_PAGE.to_string()),
            Err(_) => (
                "400 Bad Request",
                "<!doctype html><html><body><h1>Login failed</h1><p>See the terminal for details.</p></body></html>"
                    .to_string(),
            ),
        };
        let _ = stream.write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            )
            .as_bytes(),
        );
        return Ok(result.map_err(api_in("Error authenticating"))?.unwrap_or(Value::Null));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_round_trip_through_percent_encoding() {
        for s in ["a b&c=d/é", "plain", "%zz", "x+y"] {
            assert_eq!(unpct(&pct(s)), s);
        }
        assert_eq!(unpct("a+b%2Fc"), "a b/c");
        assert_eq!(unpct("100%"), "100%");
    }
}
