//! The snapshot file: every physical entry (values as the barrier stored them, so still
//! encrypted), a header saying where and when it was taken, and a SHA-256 over all of it.
//!
//! ```text
//! "COFFER-SNAPSHOT\n"                magic (16 bytes)
//! u32 big-endian n, n bytes          the header, JSON (see [`Header`])
//! for each entry, in key order:
//!   u32 key length, key (UTF-8)
//!   u64 value length, value
//! 32 bytes                           SHA-256 of everything above
//! ```
//!
//! A snapshot restores into a server of any backend; it opens with the unseal keys (or the
//! auto-unseal seal) of the server it was taken from, since its keyring travels with it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first bytes of every snapshot.
pub const MAGIC: &[u8; 16] = b"COFFER-SNAPSHOT\n";
/// The format this code writes and reads.
pub const FORMAT: u32 = 1;

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

/// Why bytes are not a snapshot this code can restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Not a Coffer snapshot at all.
    #[error("not a Coffer snapshot (it does not start with the snapshot header)")]
    NotASnapshot,
    /// Cut short or damaged.
    #[error("the snapshot is truncated or damaged: {0}")]
    Damaged(&'static str),
    /// The checksum does not match the content.
    #[error("the snapshot's SHA-256 checksum does not match its content: it was altered or damaged")]
    Checksum,
    /// Written by a newer format.
    #[error("snapshot format {0} is not supported (this server reads format {FORMAT})")]
    Format(u32),
    /// The header is not what it should be.
    #[error("the snapshot header is invalid: {0}")]
    Header(#[source] serde_json::Error),
}

/// Encodes `entries` (sorted by key by the caller or not: they are written as given).
pub fn encode(header: &Header, entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let head = serde_json::to_vec(header).unwrap_or_default();
    let size: usize = entries.iter().map(|(k, v)| 12 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + head.len() + size + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(head.len() as u32).to_be_bytes());
    out.extend_from_slice(&head);
    for (k, v) in entries {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u64).to_be_bytes());
        out.extend_from_slice(v);
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
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

/// Checks and decodes a snapshot: its checksum first, then every length against what is left,
/// so damaged or hostile bytes give an error, never a panic or a huge allocation.
pub fn decode(bytes: &[u8]) -> Result<(Header, crate::Entries), SnapshotError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    if bytes.len() < MAGIC.len() + 4 + 32 {
        return Err(SnapshotError::Damaged("shorter than a header and a checksum"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(SnapshotError::Checksum);
    }
    let mut r = Reader { b: body, at: MAGIC.len() };
    let n = r.u32("header length")? as usize;
    let header: Header = serde_json::from_slice(r.take(n, "header")?).map_err(SnapshotError::Header)?;
    if header.format != FORMAT {
        return Err(SnapshotError::Format(header.format));
    }
    let mut entries = Vec::new();
    while r.at < body.len() {
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
    Ok((header, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n: u64) -> Header {
        Header { format: FORMAT, created: 1, backend: "file".into(), version: "t".into(), entries: n }
    }

    #[test]
    fn a_snapshot_round_trips_and_any_changed_byte_is_caught() {
        let entries = vec![("core/a".to_string(), vec![1, 2, 3]), ("logical/x/y".to_string(), vec![])];
        let bytes = encode(&header(2), &entries);
        let (h, back) = decode(&bytes).unwrap();
        assert_eq!((h, back), (header(2), entries));
        for i in [0, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(decode(&bad).is_err(), "byte {i} changed must be refused");
        }
        assert!(decode(&bytes[..bytes.len() - 5]).is_err());
        assert!(matches!(decode(b"{\"not\": \"a snapshot\"}"), Err(SnapshotError::NotASnapshot)));
    }

    #[test]
    fn hostile_lengths_are_refused_without_allocating() {
        // A valid checksum over a header claiming a 4 GiB key: refused as damaged.
        let mut body = MAGIC.to_vec();
        let head = serde_json::to_vec(&header(1)).unwrap();
        body.extend_from_slice(&(head.len() as u32).to_be_bytes());
        body.extend_from_slice(&head);
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        let sum = Sha256::digest(&body);
        body.extend_from_slice(&sum);
        assert!(matches!(decode(&body), Err(SnapshotError::Damaged(_))));
    }
}
