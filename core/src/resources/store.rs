//! Named resources kept on disk (`resources.path`), so that a manager opened on the
//! same file recreates them (eKuiper's boot reload). An embedded crash-safe database
//! (redb, as the durable offsets use): each create, update and delete is one
//! transaction, on disk when the call returns.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, ReadableTable, TableDefinition};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// id -> `{"type": ..., "props": [[key, value], ...]}`.
const TABLE: TableDefinition<&str, &str> = TableDefinition::new("named_resources");

/// One stored resource.
pub(crate) struct Stored {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) props: Vec<(String, String)>,
}

pub(crate) struct ResourceStore {
    path: PathBuf,
    db: Mutex<Option<Database>>,
}

fn io(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        crate::error::Code::Io,
        format!("{what} the resource store {}: {e}", path.display()),
    )
}

impl ResourceStore {
    pub(crate) fn open(path: &str) -> Result<ResourceStore> {
        let path = PathBuf::from(path);
        let db = Database::create(&path).map_err(|e| io(&path, "open", e))?;
        let txn = db.begin_write().map_err(|e| io(&path, "open", e))?;
        txn.open_table(TABLE).map_err(|e| io(&path, "open", e))?;
        txn.commit().map_err(|e| io(&path, "open", e))?;
        Ok(ResourceStore {
            path,
            db: Mutex::new(Some(db)),
        })
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let guard = self.db.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(db) => f(db),
            None => Err(Error::unavailable("the resource store is closed")),
        }
    }

    pub(crate) fn put(&self, id: &str, kind: &str, props: &[(String, String)]) -> Result<()> {
        let pairs: Vec<Value> = props.iter().map(|(k, v)| json!([k, v])).collect();
        let text = json!({ "type": kind, "props": pairs }).to_string();
        self.with_db(|db| {
            let txn = db
                .begin_write()
                .map_err(|e| io(&self.path, "write to", e))?;
            {
                let mut t = txn
                    .open_table(TABLE)
                    .map_err(|e| io(&self.path, "write to", e))?;
                t.insert(id, text.as_str())
                    .map_err(|e| io(&self.path, "write to", e))?;
            }
            txn.commit().map_err(|e| io(&self.path, "write to", e))
        })
    }

    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        self.with_db(|db| {
            let txn = db
                .begin_write()
                .map_err(|e| io(&self.path, "write to", e))?;
            {
                let mut t = txn
                    .open_table(TABLE)
                    .map_err(|e| io(&self.path, "write to", e))?;
                t.remove(id).map_err(|e| io(&self.path, "write to", e))?;
            }
            txn.commit().map_err(|e| io(&self.path, "write to", e))
        })
    }

    /// Every stored resource, by id. An entry that does not parse is skipped and
    /// named in the second list.
    pub(crate) fn load(&self) -> Result<(Vec<Stored>, Vec<String>)> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|e| io(&self.path, "read", e))?;
            let t = txn
                .open_table(TABLE)
                .map_err(|e| io(&self.path, "read", e))?;
            let (mut ok, mut bad) = (Vec::new(), Vec::new());
            for row in t.iter().map_err(|e| io(&self.path, "read", e))? {
                let (k, v) = row.map_err(|e| io(&self.path, "read", e))?;
                let id = k.value().to_string();
                match parse(v.value()) {
                    Some((kind, props)) => ok.push(Stored { id, kind, props }),
                    None => bad.push(id),
                }
            }
            Ok((ok, bad))
        })
    }

    pub(crate) fn close(&self) {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(db);
    }
}

fn parse(text: &str) -> Option<(String, Vec<(String, String)>)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let kind = v.get("type")?.as_str()?.to_string();
    let props = v
        .get("props")?
        .as_array()?
        .iter()
        .map(|p| {
            Some((
                p.get(0)?.as_str()?.to_string(),
                p.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((kind, props))
}
