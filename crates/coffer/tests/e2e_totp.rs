//! The TOTP engine driven by the real `bao` CLI against `coffer server -dev`: enable, generate
//! a key, read and check a code (once only), import keys by URL and by secret, and compare
//! their codes with RFC 6238 computed here, independently of the engine.
mod common;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;

fn bao_json(bao: &str, addr: &str, args: &[&str]) -> Value {
    let o = cli(bao, addr, Some("root"), args);
    assert!(o.status.success(), "bao {args:?} failed ({:?}):\n{}", o.status.code(), out(&o));
    json(&String::from_utf8_lossy(&o.stdout))
}

fn bao_ok(bao: &str, addr: &str, args: &[&str]) -> String {
    let o = cli(bao, addr, Some("root"), args);
    assert!(o.status.success(), "bao {args:?} failed ({:?}):\n{}", o.status.code(), out(&o));
    out(&o)
}

/// RFC 4648 base32 without padding checks, enough for otpauth secrets.
fn base32_decode(s: &str) -> Vec<u8> {
    let mut bits: u64 = 0;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            other => panic!("not base32: {other}"),
        };
        bits = (bits << 5) | u64::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// RFC 6238 with T0 = 0, dynamic truncation from RFC 4226.
fn totp(alg: &str, key: &[u8], unix: u64, period: u64, digits: u32) -> String {
    let msg = (unix / period).to_be_bytes();
    let mac: Vec<u8> = match alg {
        "SHA1" => Hmac::<sha1::Sha1>::new_from_slice(key).unwrap().chain_update(msg).finalize().into_bytes().to_vec(),
        "SHA256" => {
            Hmac::<sha2::Sha256>::new_from_slice(key).unwrap().chain_update(msg).finalize().into_bytes().to_vec()
        }
        "SHA512" => {
            Hmac::<sha2::Sha512>::new_from_slice(key).unwrap().chain_update(msg).finalize().into_bytes().to_vec()
        }
        other => panic!("unknown algorithm {other}"),
    };
    let off = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([mac[off], mac[off + 1], mac[off + 2], mac[off + 3]]) & 0x7fff_ffff;
    format!("{:0w$}", u64::from(bin) % 10u64.pow(digits), w = digits as usize)
}

/// Reads a code and checks it against the independent computation at the instant the server
/// says it generated it.
fn read_and_compare(bao: &str, addr: &str, name: &str, alg: &str, key: &[u8], period: u64, digits: u32) -> String {
    let d = bao_json(bao, addr, &["read", "-format=json", &format!("totp/code/{name}")]);
    let code = d["data"]["code"].as_str().unwrap().to_string();
    let generated = d["data"]["generated"].as_u64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(generated.abs_diff(now) < 60, "generated {generated} is the server's current time ({now})");
    assert_eq!(d["data"]["expire_time"].as_u64().unwrap(), (generated / period + 1) * period);
    assert_eq!(code, totp(alg, key, generated, period, digits), "{name}: code at {generated}");
    code
}

#[test]
fn bao_cli_drives_the_totp_engine() {
    let Some(bao) = bao_path() else { return };
    let server = Server::start_dev("root");
    let addr = server.addr.clone();

    assert!(bao_ok(&bao, &addr, &["secrets", "enable", "totp"]).contains("Enabled the totp secrets engine at: totp/"));

    // Generate: the answer carries the URL and its QR code (a base64 PNG), once.
    let g = bao_json(
        &bao,
        &addr,
        &["write", "-format=json", "totp/keys/gen", "generate=true", "issuer=Coffer", "account_name=e2e@example.com"],
    );
    let url = g["data"]["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(
            "otpauth://totp/Coffer:e2e@example.com?algorithm=SHA1&digits=6&issuer=Coffer&period=30&secret="
        ),
        "{url}"
    );
    assert!(g["data"]["barcode"].as_str().unwrap().starts_with("iVBORw0KGgo"), "a base64 PNG");
    let secret = base32_decode(url.rsplit_once("secret=").unwrap().1);
    assert_eq!(secret.len(), 20);

    let r = bao_json(&bao, &addr, &["read", "-format=json", "totp/keys/gen"]);
    assert_eq!(
        r["data"],
        serde_json::json!({"account_name": "e2e@example.com", "algorithm": "SHA1", "digits": 6, "issuer": "Coffer", "period": 30})
    );

    // Read a code, check it (valid), check it again (refused: already used).
    let code = read_and_compare(&bao, &addr, "gen", "SHA1", &secret, 30, 6);
    let v = bao_json(&bao, &addr, &["write", "-format=json", "totp/code/gen", &format!("code={code}")]);
    assert_eq!(v["data"]["valid"], true);
    let o = cli(&bao, &addr, Some("root"), &["write", "totp/code/gen", &format!("code={code}")]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let text = out(&o);
    assert!(
        text.contains("Code: 400") && text.contains("code already used; wait until the next time period"),
        "{text}"
    );

    // A wrong code is not valid.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let v = bao_json(&bao, &addr, &["write", "-format=json", "totp/code/gen", &format!("code={wrong}")]);
    assert_eq!(v["data"]["valid"], false);

    // Import by URL (SHA256, 8 digits, 60 s) and by secret; compare with RFC 6238 computed here.
    let key = b"12345678901234567890123456789012";
    let b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
    assert_eq!(base32_decode(b32), key);
    let import_url = format!(
        "otpauth://totp/ACME%20Co:jane@example.com?secret={b32}&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60"
    );
    assert!(bao_ok(&bao, &addr, &["write", "totp/keys/imported", &format!("url={import_url}")]).contains("Success!"));
    let r = bao_json(&bao, &addr, &["read", "-format=json", "totp/keys/imported"]);
    assert_eq!(
        r["data"],
        serde_json::json!({"account_name": "jane@example.com", "algorithm": "SHA256", "digits": 8, "issuer": "ACME Co", "period": 60})
    );
    read_and_compare(&bao, &addr, "imported", "SHA256", key, 60, 8);

    bao_ok(&bao, &addr, &["write", "totp/keys/bykey", &format!("key={b32}"), "algorithm=SHA512"]);
    let code = read_and_compare(&bao, &addr, "bykey", "SHA512", key, 30, 6);
    let v = bao_json(&bao, &addr, &["write", "-format=json", "totp/code/bykey", &format!("code={code}")]);
    assert_eq!(v["data"]["valid"], true);

    // The generated key's URL re-imports to the same codes.
    bao_ok(&bao, &addr, &["write", "totp/keys/again", &format!("url={url}")]);
    read_and_compare(&bao, &addr, "again", "SHA1", &secret, 30, 6);

    // Bad input is a 400 with OpenBao's message.
    let o = cli(
        &bao,
        &addr,
        Some("root"),
        &["write", "totp/keys/bad", "generate=true", "issuer=i", "account_name=a", "digits=7"],
    );
    assert!(out(&o).contains("Code: 400") && out(&o).contains("the digits value can only be 6 or 8"), "{}", out(&o));
    let o = cli(&bao, &addr, Some("root"), &["read", "totp/code/missing"]);
    assert!(out(&o).contains("Code: 400") && out(&o).contains("unknown key: missing"), "{}", out(&o));

    let listed = bao_ok(&bao, &addr, &["list", "totp/keys"]);
    for k in ["again", "bykey", "gen", "imported"] {
        assert!(listed.contains(k), "{listed}");
    }
    bao_ok(&bao, &addr, &["delete", "totp/keys/again"]);
    let o = cli(&bao, &addr, Some("root"), &["read", "totp/keys/again"]);
    assert_eq!(o.status.code(), Some(2), "deleted: {}", out(&o));
}
