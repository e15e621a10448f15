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

use crate::auth::{validate_tenant, NamespaceGrant, Scopes};
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
/// Largest version, citation count or turn number (2^53: exact in every
/// JSON reader, and far from overflowing when incremented).
pub const MAX_COUNT: i64 = 1 << 53;
/// Latest instant a record may name: 9999-12-31T23:59:59.999Z.
pub const MAX_MILLIS: Millis = 253_402_300_799_999;
/// Longest session summary, in bytes.
pub const MAX_SUMMARY_BYTES: usize = 4 * MAX_TEXT_BYTES;

/// Refuses an instant before 1970 or after 9999.
fn check_time(at: Millis, field: &str) -> Result<()> {
    if (0..=MAX_MILLIS).contains(&at) {
        Ok(())
    } else {
        Err(Error::invalid(format!("{field} = {at} is not an instant between 1970 and 9999 (epoch milliseconds)")))
    }
}

/// Refuses a count below `min` or above [`MAX_COUNT`].
fn check_count(n: i64, min: i64, field: &str) -> Result<()> {
    if (min..=MAX_COUNT).contains(&n) {
        Ok(())
    } else {
        Err(Error::invalid(format!("{field} = {n} is out of range: allowed {min} to {MAX_COUNT}")))
    }
}

/// Refuses an id that is not a UUID in its canonical form (lowercase, hyphenated).
fn check_uuid(id: &str, field: &str) -> Result<()> {
    match uuid::Uuid::parse_str(id) {
        Ok(u) if u.hyphenated().to_string() == id => Ok(()),
        _ => Err(Error::invalid(format!("{field}: {id:?} is not a lowercase hyphenated UUID"))),
    }
}

/// Refuses empty, over-long or control-character names.
fn check_name(name: &str, max: usize, field: &str) -> Result<()> {
    if name.len() > max || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{field} must be at most {max} bytes without control characters")));
    }
    Ok(())
}

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

    /// The tenant a record belongs to (`None` for a header or an end).
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Record::Header(_) | Record::End(_) => None,
            Record::TenantModel(m) => Some(&m.tenant),
            Record::Key(k) => Some(&k.tenant),
            Record::Memory(m) => Some(&m.tenant),
            Record::Merge(m) => Some(&m.tenant),
            Record::Session(s) => Some(&s.tenant),
            Record::Job(j) => Some(&j.tenant),
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
        let field = format!("tenant {}: the model record", self.tenant);
        if self.model.is_empty() || !(1..=MAX_DIMS).contains(&self.dims) {
            return Err(Error::invalid(format!("{field} needs a model name and 1-{MAX_DIMS} dims")));
        }
        check_name(&self.model, 256, &format!("{field}.model"))?;
        check_time(self.recorded_at, &format!("{field}.recorded_at"))
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
    /// Comma-separated namespace prefixes the key is limited to; absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<String>,
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
            namespaces: k.namespaces.as_ref().map(NamespaceGrant::to_list),
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
        check_name(&self.name, 256, &format!("key {:?}.name", self.id))?;
        check_time(self.created_at, "key.created_at")?;
        if let Some(at) = self.revoked_at {
            check_time(at, "key.revoked_at")?;
        }
        let hash = unhex(&self.hash).ok_or_else(|| bad("the hash is not 64 lowercase hex digits"))?;
        Ok(KeyRow {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            hash,
            scopes: Scopes::parse_list(&self.scopes)?,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            namespaces: self.namespaces.as_deref().map(NamespaceGrant::parse_list).transpose()?,
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

    /// The stored form (its `seq` is assigned on insert) and its vector
    /// (normalised), after the checks the API makes of a write; the
    /// fingerprint is taken afresh.
    pub fn to_stored(&self) -> Result<(Stored, Option<Vec<f32>>)> {
        validate_tenant(&self.tenant)?;
        let field = format!("memory {:?}", self.id);
        check_uuid(&self.id, &field)?;
        let namespace = Namespace::new(self.namespace.clone(), &format!("{field}.namespace"))?;
        match &self.key {
            Some(k) => validate_key(k, &format!("{field}.key"))?,
            // Only an item (keyed) may have no searchable text.
            None => crate::model::memory::validate_text(&self.text, &format!("{field}.text"))?,
        }
        if self.text.contains('\0') || self.text.len() > MAX_TEXT_BYTES {
            return Err(Error::invalid(format!("{field}.text has a NUL character or is over {MAX_TEXT_BYTES} bytes")));
        }
        for (at, name) in
            [(self.created_at, "created_at"), (self.updated_at, "updated_at"), (self.salience_at, "salience_at")]
        {
            check_time(at, &format!("{field}.{name}"))?;
        }
        if let Some(at) = self.expires_at {
            check_time(at, &format!("{field}.expires_at"))?;
        }
        check_count(self.version, 1, &format!("{field}.version"))?;
        check_count(self.cite_count, 0, &format!("{field}.cite_count"))?;
        if self.ttl_ms.is_some_and(|t| !(1..=crate::model::memory::MAX_TTL_SECONDS * 1000).contains(&t)) {
            return Err(Error::invalid(format!("{field}.ttl_ms is out of range")));
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
        let embedding = match &self.embedding {
            Some(v) => {
                let mut v = v.clone();
                let norm = crate::vector::norm(&v);
                if v.is_empty() || v.len() > MAX_DIMS || !norm.is_finite() || norm <= f32::EPSILON {
                    return Err(Error::invalid(format!(
                        "{field}.embedding must have 1-{MAX_DIMS} finite numbers, not all zero"
                    )));
                }
                // Stored vectors are unit length already: kept bit for bit
                // (the copy's checksum is the original's); others are scaled.
                if (norm - 1.0).abs() > 1e-4 {
                    crate::vector::normalise(&mut v);
                }
                Some(v)
            }
            None => None,
        };
        let stored = Stored {
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
        };
        Ok((stored, embedding))
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
        let field = format!("merge {:?}", self.id);
        check_uuid(&self.id, &field)?;
        check_uuid(&self.survivor, &format!("{field}.survivor"))?;
        if self.id == self.survivor {
            return Err(Error::invalid(format!("{field} is merged into itself")));
        }
        check_time(self.merged_at, &format!("{field}.merged_at"))
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

    /// The number of the first turn the record keeps (`turn_count + 1` when
    /// it keeps none).
    pub fn first_turn(&self) -> i64 {
        self.turn_count.saturating_sub(self.turns.len() as i64).saturating_add(1)
    }

    /// The stored row and turns, checked as the API checks an append. Turns
    /// must be in order, without gaps, ending at `turn_count`, and include
    /// every turn not yet distilled.
    pub fn to_rows(&self) -> Result<(SessionRow, Vec<Turn>)> {
        validate_tenant(&self.tenant)?;
        validate_session_id(&self.id)?;
        let field = format!("session {:?}", self.id);
        let namespace = Namespace::new(self.namespace.clone(), &format!("{field}.namespace"))?;
        if self.summary.contains('\0') || self.summary.len() > MAX_SUMMARY_BYTES {
            return Err(Error::invalid(format!(
                "{field}.summary has a NUL character or is over {MAX_SUMMARY_BYTES} bytes"
            )));
        }
        check_count(self.turn_count, 0, &format!("{field}.turn_count"))?;
        for (at, name) in
            [(self.created_at, "created_at"), (self.updated_at, "updated_at"), (self.expires_at, "expires_at")]
        {
            check_time(at, &format!("{field}.{name}"))?;
        }
        if self.distilled_through < 0 || self.distilled_through > self.turn_count {
            return Err(Error::invalid(format!("{field}: distilled_through is out of range")));
        }
        let first = self.first_turn();
        // Turns not yet distilled are always kept.
        if first < 1 || first > self.distilled_through + 1 {
            return Err(Error::invalid(format!(
                "{field}: turns {}..={} must be present (not yet distilled), the export has {} turns",
                self.distilled_through + 1,
                self.turn_count,
                self.turns.len()
            )));
        }
        let mut turns = Vec::with_capacity(self.turns.len());
        for (i, t) in self.turns.iter().enumerate() {
            if t.index != first + i as i64 || t.index < 1 {
                return Err(Error::invalid(format!(
                    "{field}: turn {} is out of order (turns must run without gaps up to turn_count {})",
                    t.index, self.turn_count
                )));
            }
            let f = format!("{field}.turns[{i}]");
            check_time(t.at.at, &format!("{f}.at"))?;
            let v = NewTurn::validate(t.role.clone(), t.content.clone(), Some(t.at), t.metadata.clone(), &f)?;
            turns.push(Turn { index: t.index, role: v.role, content: v.content, at: t.at, metadata: v.metadata });
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
    /// The stored row, after its kind's rules have checked the payload.
    pub fn to_row(&self) -> Result<JobRow> {
        validate_tenant(&self.tenant)?;
        let field = format!("job {:?} of {:?}", self.job, self.subject);
        check_count(self.attempts, 0, &format!("{field}.attempts"))?;
        check_time(self.run_after, &format!("{field}.run_after"))?;
        check_time(self.created_at, &format!("{field}.created_at"))?;
        let row = JobRow {
            id: 0,
            kind: self.job.clone(),
            tenant: self.tenant.clone(),
            subject: self.subject.clone(),
            payload: self.payload.clone(),
            attempts: self.attempts,
            run_after: self.run_after,
            created_at: self.created_at,
        };
        crate::rules::sessions::check_job(&row)
            .map_err(|e| Error::invalid(format!("{field}: {}", e.public_message())))?;
        Ok(row)
    }
}

/// The shape of an export as it is read: one header first, one end last,
/// whose counts and checksum match the records between them. `import`
/// checks as it writes; a file can be checked whole before anything is
/// written (`engram import --in FILE` does).
#[derive(Debug, Default)]
pub struct StreamCheck {
    /// Whether the header was read.
    started: bool,
    end: Option<End>,
    digest: Digest,
    records: u64,
}

impl StreamCheck {
    /// Takes the next record (the `line`th of the input); returns whether it
    /// is data (neither the header nor the end).
    pub fn add(&mut self, r: &Record, line: u64) -> Result<bool> {
        self.records += 1;
        if self.end.is_some() {
            return Err(Error::invalid(format!("line {line}: a record after the end record")));
        }
        match (r, self.started) {
            (Record::Header(h), false) => {
                h.check().map_err(|e| Error::invalid(format!("line {line}: {}", e.public_message())))?;
                self.started = true;
                Ok(false)
            }
            (Record::Header(_), true) => Err(Error::invalid(format!("line {line}: a second header"))),
            (_, false) => Err(Error::invalid(format!(
                "line {line}: an export starts with a header record (is this an engram export?)"
            ))),
            (Record::End(e), true) => {
                self.end = Some(e.clone());
                Ok(false)
            }
            (r, true) => {
                self.digest.add(r);
                Ok(true)
            }
        }
    }

    /// Whether the end record was read.
    pub fn ended(&self) -> bool {
        self.end.is_some()
    }

    /// Counts and checksum of the data read so far.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Checks the input was whole: it ended with an end record whose counts
    /// and checksum match what was read.
    pub fn finish(&self) -> Result<&Digest> {
        let Some(end) = &self.end else {
            return Err(Error::invalid(format!(
                "the input ends after {} records without an end record: it was cut short",
                self.records
            )));
        };
        if !self.digest.matches(end) {
            return Err(Error::invalid(format!(
                "the records read ({:?}, checksum {}) are not those the end record lists ({:?}, checksum {}): \
                 the export was altered or damaged",
                self.digest.counts(),
                self.digest.checksum(),
                end.counts,
                end.checksum
            )));
        }
        Ok(&self.digest)
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

pub(crate) fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
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
