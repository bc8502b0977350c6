//! The snapshot file: every physical entry (values as the barrier stored them, so still
//! encrypted) in a gzipped tar archive, laid out the way `bao operator raft snapshot save`
//! checks a snapshot (it reads the archive and wants a non-empty `SHA256SUMS.sealed`, last):
//!
//! | member | content |
//! |---|---|
//! | `meta.json` | the [`Header`]: format, when, from which backend and version, how many entries |
//! | `state.bin` | the entries in key order: `u32` key length, key (UTF-8), `u64` value length, value (big-endian) |
//! | `SHA256SUMS` | `<hex>  meta.json` and `<hex>  state.bin`, one per line |
//! | `SHA256SUMS.sealed` | `SHA256SUMS` sealed by the barrier's active key: proof the snapshot came from a server holding that keyring |
//!
//! A snapshot restores into a server of any backend; it opens with the unseal keys (or the
//! auto-unseal seal) of the server it was taken from, since its keyring travels with it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;

/// The format this code writes and reads.
pub const FORMAT: u32 = 1;
/// The most a snapshot may expand to when read (a gzip bomb stops here).
pub const MAX_UNPACKED: u64 = 8 << 30;

/// What a snapshot says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT`].
    pub format: u32,
    /// When it was taken (Unix seconds).
    pub created: i64,
    /// The backend it was taken from (`file`, `postgresql`, …).
    pub backend: String,
    /// The server's version.
    pub version: String,
    /// How many entries follow.
    pub entries: u64,
}

/// A snapshot read back: checked against its `SHA256SUMS`, not yet against the keyring.
#[derive(Debug)]
pub struct Decoded {
    /// `meta.json`.
    pub header: Header,
    /// `state.bin`.
    pub entries: crate::Entries,
    /// `SHA256SUMS` as stored.
    pub sums: Vec<u8>,
    /// `SHA256SUMS.sealed` as stored.
    pub sealed_sums: Vec<u8>,
}

/// Why bytes are not a snapshot this code can restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not a gzipped tar archive with the snapshot's members.
    #[error("not a Coffer snapshot: {0}")]
    NotASnapshot(String),
    /// Cut short or damaged.
    #[error("the snapshot is truncated or damaged: {0}")]
    Damaged(&'static str),
    /// A member's SHA-256 is not the one `SHA256SUMS` records.
    #[error("the snapshot's {0} does not match its SHA256SUMS: it was altered or damaged")]
    Checksum(&'static str),
    /// Written by another format.
    #[error("snapshot format {0} is not supported (this server reads format {FORMAT})")]
    Format(u32),
    /// The header is not what it should be.
    #[error("the snapshot header is invalid: {0}")]
    Header(#[source] serde_json::Error),
    /// Reading or writing the archive failed.
    #[error("the snapshot archive cannot be read or written: {0}")]
    Io(#[source] std::io::Error),
    /// Sealing `SHA256SUMS` failed.
    #[error("sealing the snapshot's checksums failed: {0}")]
    Seal(#[source] crate::BoxError),
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn state_bin(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let size: usize = entries.iter().map(|(k, v)| 12 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(size);
    for (k, v) in entries {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u64).to_be_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// `SHA256SUMS` for the two data members.
fn sums_of(meta: &[u8], state: &[u8]) -> Vec<u8> {
    format!("{}  meta.json\n{}  state.bin\n", hex(&Sha256::digest(meta)), hex(&Sha256::digest(state))).into_bytes()
}

/// Encodes a snapshot; `seal` seals `SHA256SUMS` (the barrier's active key).
pub fn encode(
    header: &Header,
    entries: &[(String, Vec<u8>)],
    seal: impl FnOnce(&[u8]) -> Result<Vec<u8>, crate::BoxError>,
) -> Result<Vec<u8>, SnapshotError> {
    let meta = serde_json::to_vec(header).map_err(SnapshotError::Header)?;
    let state = state_bin(entries);
    let sums = sums_of(&meta, &state);
    let sealed = seal(&sums).map_err(SnapshotError::Seal)?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [
        ("meta.json", &meta[..]),
        ("state.bin", &state[..]),
        ("SHA256SUMS", &sums[..]),
        ("SHA256SUMS.sealed", &sealed[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(header.created.max(0) as u64);
        h.set_cksum();
        tar.append_data(&mut h, name, data).map_err(SnapshotError::Io)?;
    }
    let gz = tar.into_inner().map_err(SnapshotError::Io)?;
    gz.finish().map_err(SnapshotError::Io)
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SnapshotError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len()).ok_or(SnapshotError::Damaged(what))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotError> {
        let s = self.take(4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, SnapshotError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
}

/// Reads and checks a snapshot: the archive's members, each data member against `SHA256SUMS`,
/// then every length in `state.bin` against what is left — damaged or hostile bytes give an
/// error, never a panic or an unbounded allocation.
pub fn decode(bytes: &[u8]) -> Result<Decoded, SnapshotError> {
    if bytes.len() < 2 || bytes[..2] != [0x1f, 0x8b] {
        return Err(SnapshotError::NotASnapshot("it is not gzip-compressed".into()));
    }
    let gz = flate2::read::GzDecoder::new(bytes).take(MAX_UNPACKED);
    let mut archive = tar::Archive::new(gz);
    let (mut meta, mut state, mut sums, mut sealed) = (None, None, None, None);
    let entries = archive.entries().map_err(|e| SnapshotError::NotASnapshot(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| SnapshotError::NotASnapshot(e.to_string()))?;
        let name = entry.path().map_err(SnapshotError::Io)?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(SnapshotError::Io)?;
        match name.as_str() {
            "meta.json" => meta = Some(data),
            "state.bin" => state = Some(data),
            "SHA256SUMS" => sums = Some(data),
            "SHA256SUMS.sealed" => sealed = Some(data),
            _ => {}
        }
    }
    let missing = |what: &str| SnapshotError::NotASnapshot(format!("it has no {what}"));
    let meta = meta.ok_or_else(|| missing("meta.json"))?;
    let state = state.ok_or_else(|| missing("state.bin"))?;
    let sums = sums.ok_or_else(|| missing("SHA256SUMS"))?;
    let sealed_sums = sealed.filter(|s| !s.is_empty()).ok_or(SnapshotError::Damaged("SHA256SUMS.sealed is missing"))?;
    let recorded = String::from_utf8_lossy(&sums).into_owned();
    for (name, data) in [("meta.json", &meta), ("state.bin", &state)] {
        let line = format!("{}  {name}", hex(&Sha256::digest(data)));
        if !recorded.lines().any(|l| l == line) {
            return Err(SnapshotError::Checksum(if name == "meta.json" { "meta.json" } else { "state.bin" }));
        }
    }
    let header: Header = serde_json::from_slice(&meta).map_err(SnapshotError::Header)?;
    if header.format != FORMAT {
        return Err(SnapshotError::Format(header.format));
    }
    let mut r = Reader { b: &state, at: 0 };
    let mut entries = Vec::new();
    while r.at < state.len() {
        let kl = r.u32("key length")? as usize;
        let key = std::str::from_utf8(r.take(kl, "key")?)
            // drop-cause: the position of the bad byte says nothing more than "not UTF-8".
            .map_err(|_| SnapshotError::Damaged("a key is not UTF-8"))?;
        let vl = usize::try_from(r.u64("value length")?)
            // drop-cause: a length beyond usize is simply impossible here.
            .map_err(|_| SnapshotError::Damaged("value length"))?;
        let value = r.take(vl, "value")?.to_vec();
        entries.push((key.to_string(), value));
    }
    if entries.len() as u64 != header.entries {
        return Err(SnapshotError::Damaged("the entry count does not match the header"));
    }
    Ok(Decoded { header, entries, sums, sealed_sums })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n: u64) -> Header {
        Header { format: FORMAT, created: 1, backend: "file".into(), version: "t".into(), entries: n }
    }

    #[test]
    fn a_snapshot_round_trips_and_an_altered_member_is_caught() {
        let entries = vec![("core/a".to_string(), vec![1, 2, 3]), ("logical/x/y".to_string(), vec![])];
        let bytes = encode(&header(2), &entries, |s| Ok(s.iter().rev().copied().collect())).unwrap();
        let d = decode(&bytes).unwrap();
        assert_eq!((d.header, d.entries), (header(2), entries.clone()));
        assert_eq!(d.sealed_sums, d.sums.iter().rev().copied().collect::<Vec<_>>());
        // Any change to the data shows in a checksum, the archive or the gzip trailer.
        let plain = {
            let mut v = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut v).unwrap();
            v
        };
        let at = plain.windows(6).position(|w| w == b"core/a").unwrap();
        let mut altered = plain.clone();
        altered[at] = b'C';
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &altered).unwrap();
        assert!(matches!(decode(&gz.finish().unwrap()), Err(SnapshotError::Checksum("state.bin"))));
        assert!(decode(&bytes[..bytes.len() / 2]).is_err(), "a truncated file is refused");
        assert!(matches!(decode(b"{\"not\": \"a snapshot\"}"), Err(SnapshotError::NotASnapshot(_))));
    }

    #[test]
    fn hostile_lengths_are_refused_without_allocating() {
        // A state.bin claiming a 4 GiB key, with checksums that match it: refused as damaged.
        let mut state = u32::MAX.to_be_bytes().to_vec();
        state.extend_from_slice(b"xy");
        let meta = serde_json::to_vec(&header(1)).unwrap();
        let sums = sums_of(&meta, &state);
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in [
            ("meta.json", &meta[..]),
            ("state.bin", &state[..]),
            ("SHA256SUMS", &sums[..]),
            ("SHA256SUMS.sealed", b"x"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_cksum();
            tar.append_data(&mut h, name, data).unwrap();
        }
        let bytes = tar.into_inner().unwrap().finish().unwrap();
        assert!(matches!(decode(&bytes), Err(SnapshotError::Damaged(_))));
    }
}
