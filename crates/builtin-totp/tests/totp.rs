//! The TOTP engine through the Backend trait, over an in-process storage view and a clock the
//! tests set.
use coffer_builtin_totp::Totp;
use coffer_sdk::framework;
use coffer_sdk::{Backend, ErrorKind, LogicalError, Operation, Request, Response};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use coffer_sdk::testing::MapView;

type Res = std::result::Result<Option<Response>, LogicalError>;

struct Env {
    b: framework::Backend<Totp>,
    s: Arc<MapView>,
    now: Arc<AtomicU64>,
}

impl Env {
    fn new(now: u64) -> Self {
        let clock = Arc::new(AtomicU64::new(now));
        let c = clock.clone();
        Env {
            b: framework::Backend::new(Totp::with_clock(Arc::new(move || c.load(Ordering::SeqCst)))),
            s: Arc::new(MapView::default()),
            now: clock,
        }
    }
    fn set_time(&self, t: u64) {
        self.now.store(t, Ordering::SeqCst);
    }
    async fn call(&self, op: Operation, path: &str, data: Value) -> Res {
        self.b
            .handle_request(Request {
                operation: op,
                path: path.into(),
                data: data.as_object().cloned().unwrap_or_default(),
                mount_point: "totp/".into(),
                storage: self.s.clone(),
                system: coffer_sdk::SystemInfo { default_lease_ttl: 2764800, max_lease_ttl: 2764800 },
                remote_addr: None,
                services: None,
                client_certs: None,
                display_name: String::new(),
                entity_id: String::new(),
            })
            .await
    }
    async fn data(&self, op: Operation, path: &str, body: Value) -> Map<String, Value> {
        self.call(op, path, body).await.unwrap().expect("a response").data.expect("data")
    }
    async fn write(&self, name: &str, body: Value) {
        let r = self.call(Operation::Update, &format!("keys/{name}"), body).await.unwrap();
        assert!(r.is_none(), "an import answers 204");
    }
    async fn code(&self, name: &str) -> String {
        self.data(Operation::Read, &format!("code/{name}"), json!({})).await["code"].as_str().unwrap().to_string()
    }
    /// The code of `name` at `at`, leaving the clock as it was.
    async fn code_at(&self, name: &str, at: u64) -> String {
        let saved = self.now.load(Ordering::SeqCst);
        self.set_time(at);
        let c = self.code(name).await;
        self.set_time(saved);
        c
    }
    async fn check(&self, name: &str, code: &str) -> Res {
        self.call(Operation::Update, &format!("code/{name}"), json!({ "code": code })).await
    }
    async fn valid(&self, name: &str, code: &str) -> bool {
        self.check(name, code).await.unwrap().unwrap().data.unwrap()["valid"].as_bool().unwrap()
    }
    async fn err(&self, op: Operation, path: &str, body: Value) -> LogicalError {
        self.call(op, path, body).await.expect_err("an error")
    }
}

fn b32(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(bytes)
}

fn bad_request(e: &LogicalError, msg: &str) {
    assert_eq!(e.kind, ErrorKind::BadRequest, "{e}");
    assert_eq!(e.messages, vec![msg.to_string()]);
}

/// RFC 6238 Appendix B: 8 digits, 30-second steps, the three reference seeds.
#[tokio::test]
async fn rfc6238_test_vectors_for_sha1_sha256_sha512() {
    let seed20 = b"12345678901234567890".to_vec();
    let seed32 = b"12345678901234567890123456789012".to_vec();
    let seed64 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
    let vectors: [(u64, [&str; 3]); 6] = [
        (59, ["94287082", "46119246", "90693936"]),
        (1111111109, ["07081804", "68084774", "25091201"]),
        (1111111111, ["14050471", "67062674", "99943326"]),
        (1234567890, ["89005924", "91819424", "93441116"]),
        (2000000000, ["69279037", "90698825", "38618901"]),
        (20000000000, ["65353130", "77737706", "47863826"]),
    ];
    let env = Env::new(0);
    for (name, alg, seed) in [("s1", "SHA1", &seed20), ("s256", "SHA256", &seed32), ("s512", "SHA512", &seed64)] {
        env.write(name, json!({"key": b32(seed), "algorithm": alg, "digits": 8, "period": 30})).await;
    }
    for (t, want) in vectors {
        env.set_time(t);
        for (i, name) in ["s1", "s256", "s512"].iter().enumerate() {
            let d = env.data(Operation::Read, &format!("code/{name}"), json!({})).await;
            assert_eq!(d["code"], want[i], "{name} at {t}");
            assert_eq!(d["generated"], t);
            assert_eq!(d["expire_time"], (t / 30 + 1) * 30);
            assert_eq!(d["period"], "30s");
        }
    }
    // And they validate.
    env.set_time(1234567890);
    assert!(env.valid("s512", "93441116").await);
}

fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn generate_returns_a_decodable_qr_png_and_a_url_that_reimports_to_the_same_codes() {
    let env = Env::new(1_700_000_000);
    let d = env
        .data(
            Operation::Update,
            "keys/gen",
            json!({"generate": true, "issuer": "Acme Corp", "account_name": "alice@example.com",
                   "algorithm": "SHA256", "digits": 8, "period": 60, "key_size": 32}),
        )
        .await;
    assert_eq!(d.keys().collect::<Vec<_>>(), ["barcode", "url"]);
    let url = d["url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/Acme%20Corp:alice@example.com?algorithm=SHA256&digits=8&issuer=Acme%20Corp&period=60&secret="), "{url}");
    let secret = url.rsplit_once("secret=").unwrap().1;
    assert_eq!(data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap().len(), 32);

    let png_bytes = data_encoding::BASE64.decode(d["barcode"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(decode_qr(&png_bytes), url);

    // The read shows the settings, never the secret.
    let r = env.data(Operation::Read, "keys/gen", json!({})).await;
    assert_eq!(
        Value::Object(r),
        json!({"account_name": "alice@example.com", "algorithm": "SHA256", "digits": 8, "issuer": "Acme Corp", "period": 60})
    );

    env.write("copy", json!({ "url": url })).await;
    for t in [1_700_000_000u64, 1_700_000_061, 1_800_000_000] {
        env.set_time(t);
        let code = env.code("gen").await;
        assert_eq!(code.len(), 8);
        assert_eq!(code, env.code("copy").await, "same codes at {t}");
    }
    let r = env.data(Operation::Read, "keys/copy", json!({})).await;
    assert_eq!(r["issuer"], "Acme Corp");
    assert_eq!(r["account_name"], "alice@example.com");

    // Without export: nothing returned; qr_size 0: only the URL; another size: that size.
    let none = env
        .call(
            Operation::Update,
            "keys/quiet",
            json!({"generate": true, "issuer": "i", "account_name": "a", "exported": false}),
        )
        .await
        .unwrap();
    assert!(none.is_none());
    let d = env
        .data(
            Operation::Update,
            "keys/noqr",
            json!({"generate": true, "issuer": "i", "account_name": "a", "qr_size": 0}),
        )
        .await;
    assert_eq!(d.keys().collect::<Vec<_>>(), ["url"]);
    let secret = d["url"].as_str().unwrap().rsplit_once("secret=").unwrap().1.to_string();
    assert_eq!(secret.len(), 32, "20 random bytes by default");
    let d = env
        .data(
            Operation::Update,
            "keys/big",
            json!({"generate": true, "issuer": "i", "account_name": "a", "qr_size": 300}),
        )
        .await;
    let png_bytes = data_encoding::BASE64.decode(d["barcode"].as_str().unwrap().as_bytes()).unwrap();
    let info = png::Decoder::new(std::io::Cursor::new(&png_bytes)).read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (300, 300));
    assert_eq!(decode_qr(&png_bytes), d["url"].as_str().unwrap());

    // A QR code smaller than its modules cannot be drawn: 500, and the key is not kept.
    let e = env
        .err(
            Operation::Update,
            "keys/tiny",
            json!({"generate": true, "issuer": "i", "account_name": "a", "qr_size": 10}),
        )
        .await;
    assert_eq!(e.kind, ErrorKind::Internal);
    assert!(e.messages[0].starts_with("failed to generate QR code image: can not scale barcode"), "{e}");
    assert!(env.call(Operation::Read, "keys/tiny", json!({})).await.unwrap().is_none());

    let list = env.data(Operation::List, "keys/", json!({})).await;
    assert_eq!(list["keys"], json!(["big", "copy", "gen", "noqr", "quiet"]));
}

#[tokio::test]
async fn import_by_url_and_by_key() {
    let env = Env::new(1_111_111_111);
    let seed = b"12345678901234567890";
    let secret = b32(seed);
    env.write(
        "byurl",
        json!({"url": format!("otpauth://totp/Example%20Co:bob%40example.com?secret={secret}&issuer=Example&algorithm=SHA1&digits=8&period=30")}),
    )
    .await;
    env.write("bykey", json!({"key": secret.to_lowercase(), "digits": 8})).await;
    assert_eq!(env.code("byurl").await, "14050471");
    assert_eq!(env.code("bykey").await, "14050471");
    let r = env.data(Operation::Read, "keys/byurl", json!({})).await;
    assert_eq!(
        Value::Object(r),
        json!({"account_name": "bob@example.com", "algorithm": "SHA1", "digits": 8, "issuer": "Example", "period": 30})
    );
    let r = env.data(Operation::Read, "keys/bykey", json!({})).await;
    assert_eq!(
        Value::Object(r),
        json!({"account_name": "", "algorithm": "SHA1", "digits": 8, "issuer": "", "period": 30})
    );

    // The URL's label and parameters win over the body's; the body fills what the URL leaves out.
    env.write(
        "mixed",
        json!({"url": format!("otpauth://totp/Lbl?secret={secret}"), "key": "GEZDGNBVGY3TQOJQ",
               "issuer": "Body", "account_name": "ignored", "algorithm": "SHA1", "digits": 8, "period": "1m"}),
    )
    .await;
    let r = env.data(Operation::Read, "keys/mixed", json!({})).await;
    assert_eq!(
        Value::Object(r),
        json!({"account_name": "Lbl", "algorithm": "SHA1", "digits": 8, "issuer": "Body", "period": 60})
    );
    assert_eq!(env.code("mixed").await, "19360094"); // RFC 4226 seed, step 1111111111 / 60

    // Unpadded and padded secrets that do not fill a block are accepted, like OpenBao.
    env.write("short", json!({"key": "JBSWY3DPEHPK3PX"})).await;
    env.write("padded", json!({"key": "JBSWY3DPEHPK3PX="})).await;
    assert_eq!(env.code("short").await, env.code("padded").await);
}

#[tokio::test]
async fn validation_honours_skew() {
    let env = Env::new(1_000_000_020); // step 33333334, 10 s before the next
    let secret = b32(b"12345678901234567890");
    env.write("skew1", json!({"key": secret})).await;
    env.write("skew0", json!({"key": secret, "skew": 0})).await;
    let t = 1_000_000_020u64;
    let prev = env.code_at("skew1", t - 30).await;
    let next = env.code_at("skew1", t + 30).await;
    let two_back = env.code_at("skew1", t - 60).await;
    let current = env.code_at("skew1", t).await;
    assert!(env.valid("skew1", &prev).await, "one step behind, skew 1");
    assert!(env.valid("skew1", &next).await, "one step ahead, skew 1");
    assert!(env.valid("skew1", &current).await);
    assert!(!env.valid("skew1", &two_back).await, "two steps behind");
    assert!(!env.valid("skew0", &prev).await, "one step behind, skew 0");
    assert!(env.valid("skew0", &current).await);
    // A wrong code is simply not valid.
    let wrong = if current == "000000" { "000001" } else { "000000" };
    env.write("fresh", json!({"key": secret})).await;
    assert!(!env.valid("fresh", wrong).await);
    // Surrounding spaces are trimmed before the length check.
    env.write("spaces", json!({"key": secret})).await;
    assert!(env.valid("spaces", &format!(" {current} ")).await);
}

#[tokio::test]
async fn a_checked_code_is_refused_while_it_could_still_be_valid() {
    let start = 1_700_000_010u64;
    let env = Env::new(start);
    env.write("k", json!({"key": b32(b"12345678901234567890")})).await; // period 30, skew 1
    let code = env.code("k").await;
    assert!(env.valid("k", &code).await);
    let e = env.check("k", &code).await.unwrap_err();
    bad_request(&e, "code already used; wait until the next time period");
    // Still refused later in its window ((skew + 2) × period from the check) ...
    env.set_time(start + 89);
    bad_request(&env.check("k", &code).await.unwrap_err(), "code already used; wait until the next time period");
    // ... and checked again once the window has passed (by then it is no longer valid).
    env.set_time(start + 90);
    assert!(!env.valid("k", &code).await);
    // A wrong code also gets one try per window, as in OpenBao.
    let wrong = if code == "123456" { "654321" } else { "123456" };
    env.set_time(start + 200);
    let _ = env.valid("k", wrong).await;
    bad_request(&env.check("k", wrong).await.unwrap_err(), "code already used; wait until the next time period");

    // The records are kept in storage with an expiry and swept once expired.
    let used = || env.s.0.lock().unwrap().keys().filter(|k| k.starts_with("used/k/")).count();
    assert!(used() >= 1);
    env.set_time(start + 10_000);
    env.write("other", json!({"key": "JBSWY3DPEHPK3PXP"})).await;
    let _ = env.valid("k", "000000").await;
    assert_eq!(used(), 1, "expired records swept, the new one kept");
    // Deleting the key removes its records.
    assert!(env.call(Operation::Delete, "keys/k", json!({})).await.unwrap().is_none());
    assert_eq!(used(), 0);
    assert!(env.call(Operation::Read, "keys/k", json!({})).await.unwrap().is_none());
    bad_request(&env.err(Operation::Read, "code/k", json!({})).await, "unknown key: k");
}

#[tokio::test]
async fn bad_input_is_refused_with_400() {
    let env = Env::new(1_700_000_000);
    let w = |body: Value| {
        let env = &env;
        async move { env.err(Operation::Update, "keys/x", body).await }
    };
    let gen = |extra: Value| {
        let mut b = json!({"generate": true, "issuer": "i", "account_name": "a"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    bad_request(&w(gen(json!({"digits": 7}))).await, "the digits value can only be 6 or 8");
    bad_request(&w(gen(json!({"algorithm": "MD5"}))).await, "the algorithm value is not valid");
    bad_request(&w(gen(json!({"algorithm": "sha256"}))).await, "the algorithm value is not valid");
    bad_request(&w(gen(json!({"skew": 2}))).await, "the skew value must be 0 or 1");
    bad_request(&w(gen(json!({"period": 0}))).await, "the period value must be greater than zero");
    bad_request(&w(gen(json!({"key_size": 0}))).await, "the key_size value must be greater than zero");
    bad_request(&w(gen(json!({"qr_size": -1}))).await, "the qr_size value must be greater than or equal to zero");
    bad_request(
        &w(json!({"generate": true, "issuer": "i"})).await,
        "the account_name value is required for generated keys",
    );
    bad_request(
        &w(json!({"generate": true, "account_name": "a"})).await,
        "the issuer value is required for generated keys",
    );
    bad_request(&w(gen(json!({"key": "JBSWY3DPEHPK3PXP"}))).await, "a key should not be passed if generate is true");
    bad_request(
        &w(gen(json!({"url": "otpauth://totp/L?secret=A"}))).await,
        "a url should not be passed if generate is true",
    );
    // Checks run in OpenBao's order: digits before algorithm before period ...
    bad_request(&w(json!({"digits": 7, "algorithm": "MD5", "period": 0})).await, "the digits value can only be 6 or 8");
    bad_request(&w(json!({"skew": 3, "period": 0})).await, "the period value must be greater than zero");
    bad_request(
        &w(json!({"key_size": 0, "qr_size": -1})).await,
        "the qr_size value must be greater than or equal to zero",
    );
    bad_request(&w(json!({})).await, "the key value is required");
    bad_request(&w(json!({"key": "JBSW Y3DP"})).await, "invalid key value: illegal base32 data at input byte 4");
    bad_request(
        &w(json!({"key": "JBSWY3DPEHPK3PXP===="})).await,
        "invalid key value: illegal base32 data at input byte 16",
    );
    bad_request(&w(json!({"key": "JBSWY3DPEHPK3PXP", "digits": 7})).await, "the digits value can only be 6 or 8");
    bad_request(
        &w(json!({"url": "otpauth://totp/L%zz?secret=JBSWY3DPEHPK3PXP"})).await,
        "an error occurred while parsing url string",
    );
    bad_request(
        &w(json!({"url": "otpauth://totp/L?secret=JBSWY3DPEHPK3PXP&period=30s"})).await,
        "an error occurred while parsing period value in url",
    );
    bad_request(
        &w(json!({"url": "otpauth://totp/L?secret=JBSWY3DPEHPK3PXP&digits=x"})).await,
        "an error occurred while parsing digits value in url",
    );
    bad_request(
        &w(json!({"url": "otpauth://totp/L?secret=JBSWY3DPEHPK3PXP&digits=7"})).await,
        "the digits value can only be 6 or 8",
    );
    bad_request(
        &w(json!({"url": "otpauth://totp/L?secret=JBSWY3DPEHPK3PXP&algorithm=MD5"})).await,
        "the algorithm value is not valid",
    );
    bad_request(&w(json!({"url": "otpauth://totp/L?issuer=x"})).await, "the key value is required");
    assert_eq!(w(json!({"key": "JBSWY3DPEHPK3PXP", "period": "soon"})).await.kind, ErrorKind::BadRequest);
    assert_eq!(w(json!({"key": "JBSWY3DPEHPK3PXP", "period": -5})).await.kind, ErrorKind::BadRequest);
    assert_eq!(w(json!({"generate": "maybe"})).await.kind, ErrorKind::BadRequest);
    assert!(env.call(Operation::Read, "keys/x", json!({})).await.unwrap().is_none(), "nothing stored");

    env.write("k", json!({"key": "JBSWY3DPEHPK3PXP"})).await;
    bad_request(&env.err(Operation::Update, "code/k", json!({})).await, "the code value is required");
    bad_request(&env.err(Operation::Update, "code/k", json!({"code": ""})).await, "the code value is required");
    bad_request(&env.check("k", "12345").await.unwrap_err(), "invalid number of digits for the code");
    bad_request(&env.check("k", "1234567").await.unwrap_err(), "invalid number of digits for the code");
    bad_request(&env.check("nope", "123456").await.unwrap_err(), "unknown key: nope");
    bad_request(&env.err(Operation::Read, "code/nope", json!({})).await, "unknown key: nope");

    // Paths and operations outside the table.
    assert_eq!(env.err(Operation::Update, "keys/-bad", json!({"key": "AA"})).await.kind, ErrorKind::UnsupportedPath);
    assert_eq!(env.err(Operation::Update, "keys/a/b", json!({"key": "AA"})).await.kind, ErrorKind::UnsupportedPath);
    assert_eq!(env.err(Operation::Delete, "code/k", json!({})).await.kind, ErrorKind::UnsupportedOperation);
    assert_eq!(env.err(Operation::Read, "keys", json!({})).await.kind, ErrorKind::UnsupportedOperation);
    assert_eq!(env.err(Operation::Patch, "keys/k", json!({})).await.kind, ErrorKind::UnsupportedOperation);
}

#[tokio::test]
async fn list_and_delete() {
    let env = Env::new(1_700_000_000);
    assert!(env.call(Operation::List, "keys/", json!({})).await.unwrap().is_none(), "empty list answers 404");
    for n in ["b", "a.b", "c-d_e"] {
        env.write(n, json!({"key": "JBSWY3DPEHPK3PXP"})).await;
    }
    let l = env.data(Operation::List, "keys", json!({})).await;
    assert_eq!(l["keys"], json!(["a.b", "b", "c-d_e"]));
    assert!(env.call(Operation::Delete, "keys/b", json!({})).await.unwrap().is_none());
    assert!(env.call(Operation::Delete, "keys/never", json!({})).await.unwrap().is_none(), "deleting nothing is fine");
    let l = env.data(Operation::List, "keys/", json!({})).await;
    assert_eq!(l["keys"], json!(["a.b", "c-d_e"]));
}
