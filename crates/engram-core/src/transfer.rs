//! The export format (`engram export`, `import`, `migrate`): JSON Lines, one
//! [`Record`] a line, tagged by `kind`:
//!
//! ```text
//! {"kind":"header","format":"engram-export","version":1,"tenant":null,"exported_at":1767225600000}
//! {"kind":"tenant_model","tenant":"acme","model":"all-MiniLM-L6-v2","dims":384,"recorded_at":…}
//! {"kind":"key","id":"…","tenant":"acme","name":"ci","hash":"<sha-256 hex>","scopes":"read,write",…}
//! {"kind":"memory","tenant":"acme","id":"…","namespace":["users","alice"],"text":"…","embedding":[…],…}
//! {"kind":"merge","tenant":"acme","id":"<folded id>","survivor":"<id>","merged_at":…}
//! {"kind":"session","tenant":"acme","id":"s1","turns":[{"index":1,"role":"user",…}],…}
//! {"kind":"job","job":"distill","tenant":"acme","subject":"s1","payload":"…",…}
//! {"kind":"end","counts":{"memory":2,…},"checksum":"<sha-256 hex>"}
//! ```
//!
//! Times are milliseconds since the Unix epoch (UTC), except a turn's `at`,
//! RFC 3339 in the speaker's offset. Keys carry only the SHA-256 of their
//! secret. The `end` record's checksum is the sum, modulo 2²⁵⁶, of the
//! SHA-256 of each record's canonical JSON (object members sorted by name,
//! numbers as `serde_json` writes them): it does not depend on the order of
//! records nor on how a backend orders a JSON object's members, so an export
//! of the copy made by `migrate` has the original's checksum.
//!
//! Records are validated as the API validates its input before anything is
//! written ([`MemoryRecord::to_stored`] and friends).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::auth::{validate_tenant, Scopes};
use crate::error::{Error, Result};
use crate::model::memory::{
    validate_key, validate_metadata, validate_object_strings, validate_salience, validate_tags, MAX_TEXT_BYTES,
};
use crate::model::session::{validate_session_id, NewTurn, Turn};
use crate::model::{item, Memory, Namespace, Source, Tier};
use crate::rules::merge::fingerprint_of;
use crate::store::{JobRow, KeyRow, SessionRow, Stored, TenantModel};
use crate::time::{LocalTime, Millis};

/// The `format` of a header.
pub const FORMAT: &str = "engram-export";
/// The version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Most dimensions an exported vector may have.
pub const MAX_DIMS: usize = 8192;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The first line.
    Header(Header),
    TenantModel(ModelRecord),
    Key(KeyRecord),
    Memory(Box<MemoryRecord>),
    Merge(MergeRecord),
    Session(SessionRecord),
    Job(JobRecord),
    /// The last line: how many records of each kind came before it, and
    /// their checksum (see the module docs).
    End(End),
}

impl Record {
    /// The record's `kind`, as counted in [`End::counts`].
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Header(_) => "header",
            Record::TenantModel(_) => "tenant_model",
            Record::Key(_) => "key",
            Record::Memory(_) => "memory",
            Record::Merge(_) => "merge",
            Record::Session(_) => "session",
            Record::Job(_) => "job",
            Record::End(_) => "end",
        }
    }

    /// Parses one line; `line` (from 1) names it in the error.
    pub fn parse(text: &str, line: u64) -> Result<Record> {
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("line {line}: not an export record: {e}")))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The one tenant exported, or `None` for all.
    pub tenant: Option<String>,
    pub exported_at: Millis,
}

impl Header {
    pub fn new(tenant: Option<String>, exported_at: Millis) -> Self {
        Header { format: FORMAT.into(), version: FORMAT_VERSION, tenant, exported_at }
    }

    /// Refuses another format or a version this build cannot read.
    pub fn check(&self) -> Result<()> {
        if self.format != FORMAT {
            return Err(Error::invalid(format!("the header's format is {:?}, not {FORMAT:?}", self.format)));
        }
        if self.version != FORMAT_VERSION {
            return Err(Error::invalid(format!(
                "the export is version {} of the format; this engram reads version {FORMAT_VERSION}",
                self.version
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    pub counts: BTreeMap<String, u64>,
    pub checksum: String,
}

/// A tenant's embedding-model record: which model its vectors come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRecord {
    pub tenant: String,
    pub model: String,
    pub dims: usize,
    pub recorded_at: Millis,
}

impl ModelRecord {
    pub fn validate(&self) -> Result<()> {
        validate_tenant(&self.tenant)?;
        if self.model.is_empty() || self.model.contains('\0') || !(1..=MAX_DIMS).contains(&self.dims) {
            return Err(Error::invalid(format!("tenant {}: the model record is not valid", self.tenant)));
        }
        Ok(())
    }

    pub fn model(&self) -> TenantModel {
        TenantModel { model: self.model.clone(), dims: self.dims }
    }
}

/// An API key: its id, tenant, scopes and the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub id: String,
    pub tenant: String,
    pub name: String,
    /// SHA-256 of the secret, 64 hex digits.
    pub hash: String,
    /// Comma-separated scopes.
    pub scopes: String,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Millis>,
}

impl From<&KeyRow> for KeyRecord {
    fn from(k: &KeyRow) -> Self {
        KeyRecord {
            id: k.id.clone(),
            tenant: k.tenant.clone(),
            name: k.name.clone(),
            hash: hex(&k.hash),
            scopes: k.scopes.to_list(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

impl KeyRecord {
    pub fn to_row(&self) -> Result<KeyRow> {
        validate_tenant(&self.tenant)?;
        let bad = |what: &str| Error::invalid(format!("key {:?}: {what}", self.id));
        if self.id.is_empty() || self.id.len() > 64 || self.id.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(bad("the id is not valid"));
        }
        if self.name.len() > 256 || self.name.contains('\0') {
            return Err(bad("the name is not valid"));
        }
        let hash = unhex(&self.hash).ok_or_else(|| bad("the hash is not 64 hex digits"))?;
        Ok(KeyRow {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            hash,
            scopes: Scopes::parse_list(&self.scopes)?,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

/// A memory (an item is a memory with a key) and its vector, if it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryRecord {
    pub tenant: String,
    pub id: String,
    pub namespace: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub tier: Tier,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub salience: f64,
    #[serde(default)]
    pub pinned: bool,
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    pub source: Source,
    /// An item's index setting (see [`Memory::index`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<i64>,
    pub salience_at: Millis,
    #[serde(default)]
    pub cite_count: i64,
    /// `None`: not embedded (yet); an import queues it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl MemoryRecord {
    pub fn new(s: &Stored, embedding: Option<Vec<f32>>) -> Self {
        let m = &s.memory;
        MemoryRecord {
            tenant: s.tenant.clone(),
            id: m.id.clone(),
            namespace: m.namespace.segments().to_vec(),
            key: m.key.clone(),
            tier: m.tier,
            text: m.text.clone(),
            data: m.data.clone(),
            tags: m.tags.clone(),
            metadata: m.metadata.clone(),
            salience: m.salience,
            pinned: m.pinned,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
            expires_at: m.expires_at,
            source: m.source.clone(),
            index: m.index.clone(),
            ttl_ms: m.ttl_ms,
            salience_at: s.salience_at,
            cite_count: s.cite_count,
            embedding,
        }
    }

    /// The stored form (its `seq` is assigned on insert), after the checks
    /// the API makes of a write; the fingerprint is taken afresh.
    pub fn to_stored(&self) -> Result<Stored> {
        validate_tenant(&self.tenant)?;
        let field = format!("memory {:?}", self.id);
        if uuid::Uuid::parse_str(&self.id).is_err() {
            return Err(Error::invalid(format!("{field}: the id is not a UUID")));
        }
        let namespace = Namespace::new(self.namespace.clone(), &format!("{field}.namespace"))?;
        if let Some(k) = &self.key {
            validate_key(k, &format!("{field}.key"))?;
        }
        if self.text.contains('\0') || self.text.len() > MAX_TEXT_BYTES {
            return Err(Error::invalid(format!("{field}.text has a NUL character or is over {MAX_TEXT_BYTES} bytes")));
        }
        validate_tags(&self.tags, &format!("{field}.tags"))?;
        validate_metadata(&self.metadata, &format!("{field}.metadata"))?;
        if let Some(d) = &self.data {
            validate_object_strings(d, &format!("{field}.data"))?;
        }
        if let Some(i) = &self.index {
            item::validate_index(i, &format!("{field}.index"))?;
        }
        validate_salience(self.salience, &format!("{field}.salience"))?;
        if let Source::Session { session_id, .. } = &self.source {
            validate_session_id(session_id)?;
        }
        if self.version < 1 || self.cite_count < 0 || self.ttl_ms.is_some_and(|t| t < 1) {
            return Err(Error::invalid(format!("{field}: version, cite_count or ttl_ms out of range")));
        }
        if let Some(v) = &self.embedding {
            if v.is_empty() || v.len() > MAX_DIMS || v.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid(format!(
                    "{field}.embedding must have 1-{MAX_DIMS} finite numbers, got {}",
                    v.len()
                )));
            }
        }
        Ok(Stored {
            seq: 0,
            tenant: self.tenant.clone(),
            memory: Memory {
                id: self.id.clone(),
                namespace,
                key: self.key.clone(),
                tier: self.tier,
                text: self.text.clone(),
                data: self.data.clone(),
                tags: self.tags.clone(),
                metadata: self.metadata.clone(),
                salience: self.salience,
                pinned: self.pinned,
                version: self.version,
                created_at: self.created_at,
                updated_at: self.updated_at,
                expires_at: self.expires_at,
                source: self.source.clone(),
                index: self.index.clone(),
                ttl_ms: self.ttl_ms,
            },
            text_hash: fingerprint_of(&self.text, &self.source, &self.metadata),
            salience_at: self.salience_at,
            cite_count: self.cite_count,
        })
    }
}

/// A memory folded into another: its id leads to the survivor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRecord {
    pub tenant: String,
    pub id: String,
    pub survivor: String,
    pub merged_at: Millis,
}

impl MergeRecord {
    pub fn validate(&self) -> Result<()> {
        validate_tenant(&self.tenant)?;
        if uuid::Uuid::parse_str(&self.id).is_err() || uuid::Uuid::parse_str(&self.survivor).is_err() {
            return Err(Error::invalid(format!("merge {:?}: the ids are not UUIDs", self.id)));
        }
        Ok(())
    }
}

/// A session and the turns it still keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    pub tenant: String,
    pub id: String,
    pub namespace: Vec<String>,
    pub turn_count: i64,
    pub distilled_through: i64,
    #[serde(default)]
    pub summary: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub expires_at: Millis,
    pub turns: Vec<TurnRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnRecord {
    pub index: i64,
    pub role: String,
    pub content: String,
    /// RFC 3339 in the speaker's offset.
    pub at: LocalTime,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl SessionRecord {
    pub fn new(s: &SessionRow, turns: Vec<Turn>) -> Self {
        SessionRecord {
            tenant: s.tenant.clone(),
            id: s.id.clone(),
            namespace: s.namespace.segments().to_vec(),
            turn_count: s.turn_count,
            distilled_through: s.distilled_through,
            summary: s.summary.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            expires_at: s.expires_at,
            turns: turns
                .into_iter()
                .map(|t| TurnRecord {
                    index: t.index,
                    role: t.role,
                    content: t.content,
                    at: t.at,
                    metadata: t.metadata,
                })
                .collect(),
        }
    }

    /// The stored row and turns, checked as the API checks an append. Turns
    /// must be in order, without gaps, ending at `turn_count`.
    pub fn to_rows(&self) -> Result<(SessionRow, Vec<Turn>)> {
        validate_tenant(&self.tenant)?;
        validate_session_id(&self.id)?;
        let field = format!("session {:?}", self.id);
        let namespace = Namespace::new(self.namespace.clone(), &format!("{field}.namespace"))?;
        if self.summary.contains('\0') {
            return Err(Error::invalid(format!("{field}.summary has a NUL character")));
        }
        let first = self.turn_count - self.turns.len() as i64 + 1;
        let mut turns = Vec::with_capacity(self.turns.len());
        for (i, t) in self.turns.iter().enumerate() {
            if t.index != first + i as i64 || t.index < 1 {
                return Err(Error::invalid(format!(
                    "{field}: turn {} is out of order (turns must run without gaps up to turn_count {})",
                    t.index, self.turn_count
                )));
            }
            let f = format!("{field}.turns[{i}]");
            let v = NewTurn::validate(t.role.clone(), t.content.clone(), Some(t.at), t.metadata.clone(), &f)?;
            turns.push(Turn { index: t.index, role: v.role, content: v.content, at: t.at, metadata: v.metadata });
        }
        if self.distilled_through < 0 || self.distilled_through > self.turn_count {
            return Err(Error::invalid(format!("{field}: distilled_through is out of range")));
        }
        let row = SessionRow {
            tenant: self.tenant.clone(),
            id: self.id.clone(),
            namespace,
            turn_count: self.turn_count,
            distilled_through: self.distilled_through,
            summary: self.summary.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
        };
        Ok((row, turns))
    }
}

/// Queued background work (e.g. a session's distillation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    /// The job's kind (named `job`: `kind` tags the record).
    pub job: String,
    pub tenant: String,
    pub subject: String,
    pub payload: String,
    #[serde(default)]
    pub attempts: i64,
    pub run_after: Millis,
    pub created_at: Millis,
}

impl From<&JobRow> for JobRecord {
    fn from(j: &JobRow) -> Self {
        JobRecord {
            job: j.kind.clone(),
            tenant: j.tenant.clone(),
            subject: j.subject.clone(),
            payload: j.payload.clone(),
            attempts: j.attempts,
            run_after: j.run_after,
            created_at: j.created_at,
        }
    }
}

impl JobRecord {
    pub fn to_row(&self) -> Result<JobRow> {
        validate_tenant(&self.tenant)?;
        let ok = |s: &str| !s.contains('\0') && s.len() <= 1 << 20;
        if self.job.is_empty() || !ok(&self.job) || !ok(&self.subject) || !ok(&self.payload) || self.attempts < 0 {
            return Err(Error::invalid(format!("job {:?} of {:?} is not valid", self.job, self.subject)));
        }
        Ok(JobRow {
            id: 0,
            kind: self.job.clone(),
            tenant: self.tenant.clone(),
            subject: self.subject.clone(),
            payload: self.payload.clone(),
            attempts: self.attempts,
            run_after: self.run_after,
            created_at: self.created_at,
        })
    }
}

/// Counts and checksum of the records between a header and its end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Digest {
    counts: BTreeMap<String, u64>,
    /// A 256-bit sum, big-endian.
    sum: [u8; 32],
}

impl Digest {
    /// Counts `r` (headers and ends are not counted).
    pub fn add(&mut self, r: &Record) {
        if matches!(r, Record::Header(_) | Record::End(_)) {
            return;
        }
        *self.counts.entry(r.kind().to_owned()).or_default() += 1;
        let mut canonical = String::new();
        // A record always serialises: its maps have string keys.
        if let Ok(v) = serde_json::to_value(r) {
            write_canonical(&v, &mut canonical);
        }
        let h: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let s = u16::from(self.sum[i]) + u16::from(h[i]) + carry;
            self.sum[i] = s as u8;
            carry = s >> 8;
        }
    }

    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    pub fn checksum(&self) -> String {
        hex(&self.sum)
    }

    /// The end record for what was added.
    pub fn end(&self) -> End {
        End { counts: self.counts.clone(), checksum: self.checksum() }
    }

    /// Whether `end` describes exactly what was added.
    pub fn matches(&self, end: &End) -> bool {
        let nonzero = |m: &BTreeMap<String, u64>| -> Vec<(String, u64)> {
            m.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.clone(), *n)).collect()
        };
        nonzero(&self.counts) == nonzero(&end.counts) && self.checksum() == end.checksum
    }
}

/// `v` as JSON with every object's members sorted by name.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut members: Vec<_> = m.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(id: &str) -> Record {
        Record::Merge(MergeRecord {
            tenant: "t".into(),
            id: id.into(),
            survivor: "0190a5d2-0000-7000-8000-000000000001".into(),
            merged_at: 1,
        })
    }

    #[test]
    fn the_checksum_ignores_record_and_member_order() {
        let (a, b) = (merge("0190a5d2-0000-7000-8000-00000000000a"), merge("0190a5d2-0000-7000-8000-00000000000b"));
        let (mut d1, mut d2) = (Digest::default(), Digest::default());
        d1.add(&a);
        d1.add(&b);
        d2.add(&b);
        d2.add(&a);
        assert_eq!(d1, d2);
        assert_eq!(d1.counts()["merge"], 2);
        // The same record twice is not the same as never (no XOR cancelling).
        let mut d3 = Digest::default();
        d3.add(&a);
        d3.add(&a);
        assert_ne!(d3.checksum(), Digest::default().checksum());

        let mut x = String::new();
        write_canonical(&serde_json::json!({"b": 1, "a": {"d": [1.5, "x"], "c": null}}), &mut x);
        assert_eq!(x, r#"{"a":{"c":null,"d":[1.5,"x"]},"b":1}"#);
    }

    #[test]
    fn records_round_trip_and_unknown_fields_are_refused() {
        let r = merge("0190a5d2-0000-7000-8000-00000000000a");
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.starts_with(r#"{"kind":"merge""#), "{line}");
        assert_eq!(Record::parse(&line, 1).unwrap(), r);
        let extra = line.replace(r#""merged_at""#, r#""evil":1,"merged_at""#);
        let e = Record::parse(&extra, 7).unwrap_err();
        assert!(e.public_message().contains("line 7"), "{}", e.public_message());
        let job =
            r#"{"kind":"job","job":"distill","tenant":"t","subject":"s","payload":"{}","run_after":1,"created_at":1}"#;
        assert!(matches!(Record::parse(job, 1).unwrap(), Record::Job(j) if j.job == "distill"));
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let h: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
    }
}
