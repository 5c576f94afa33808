//! The registry's indexes: connections by id (ordered, for paged listing), the
//! subscribers of each topic (a contiguous map, for fast fan-out) and the connections
//! of each user.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use indexmap::IndexMap;

use super::conn::Conn;
use super::links::{IndexWatch, Key};
use super::types::ConnId;

#[derive(Default)]
pub(crate) struct Index {
    /// Told when a topic or user gains its first connection or loses its last.
    pub(crate) watch: Option<Arc<dyn IndexWatch>>,
    pub(crate) conns: BTreeMap<ConnId, Arc<Conn>>,
    pub(crate) topics: HashMap<Arc<str>, IndexMap<ConnId, Arc<Conn>>>,
    /// A user's connections are few (bounded by `registry.max_connections_per_user`
    /// in practice), so a small vector beats a map in memory and speed.
    pub(crate) users: HashMap<Arc<str>, Vec<Arc<Conn>>>,
}

impl Index {
    /// The topic's interned name, creating its entry if needed.
    pub(crate) fn intern_topic(&mut self, topic: &str) -> Arc<str> {
        if let Some((k, _)) = self.topics.get_key_value(topic) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(topic);
        self.topics.insert(k.clone(), IndexMap::new());
        if let Some(w) = &self.watch {
            w.changed(Key::Topic(k.clone()), true);
        }
        k
    }

    pub(crate) fn topic_len(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, IndexMap::len)
    }

    pub(crate) fn user_len(&self, user: &str) -> usize {
        self.users.get(user).map_or(0, Vec::len)
    }

    pub(crate) fn intern_user(&mut self, user: &str) -> Arc<str> {
        if let Some((k, _)) = self.users.get_key_value(user) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(user);
        self.users.insert(k.clone(), Vec::new());
        if let Some(w) = &self.watch {
            w.changed(Key::User(k.clone()), true);
        }
        k
    }

    pub(crate) fn insert(&mut self, conn: &Arc<Conn>, topics: &[Arc<str>]) {
        self.conns.insert(conn.id, conn.clone());
        for t in topics {
            self.topics
                .entry(t.clone())
                .or_default()
                .insert(conn.id, conn.clone());
        }
        if let Some(u) = &conn.user {
            self.users.entry(u.clone()).or_default().push(conn.clone());
        }
    }

    pub(crate) fn subscribe(&mut self, conn: &Arc<Conn>, topic: &Arc<str>) {
        self.topics
            .entry(topic.clone())
            .or_default()
            .insert(conn.id, conn.clone());
    }

    pub(crate) fn unsubscribe(&mut self, id: ConnId, topic: &str) {
        if let Some(m) = self.topics.get_mut(topic) {
            m.swap_remove(&id);
            if m.is_empty() {
                if let (Some((k, _)), Some(w)) = (self.topics.remove_entry(topic), &self.watch) {
                    w.changed(Key::Topic(k), false);
                }
            }
        }
    }

    /// Removes the connection from every index; returns it if it was there.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Arc<Conn>> {
        let conn = self.conns.remove(&id)?;
        let topics = super::conn::lock(&conn.topics).clone();
        for t in &topics {
            self.unsubscribe(id, t);
        }
        if let Some(u) = &conn.user {
            if let Some(v) = self.users.get_mut(u) {
                v.retain(|c| c.id != id);
                if v.is_empty() {
                    if let (Some((k, _)), Some(w)) = (self.users.remove_entry(u), &self.watch) {
                        w.changed(Key::User(k), false);
                    }
                }
            }
        }
        Some(conn)
    }
}
