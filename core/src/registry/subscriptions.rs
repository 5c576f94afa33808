//! Topic subscriptions and metadata of registered connections: subscribe (limits and
//! the authorize hook apply), unsubscribe, set_metadata. A topic that gains its first
//! subscriber or loses its last is reported to the index's watcher (the cluster).

use super::conn::lock;
use super::{Registry, non_empty, not_found};
use crate::error::{Code, Error, Result};
use crate::events::EventKind;
use crate::registry::{Authenticator, ConnId};

impl Registry {
    /// Subscribes `id` to `topic`; returns false if it already was. Limits and the
    /// authorize hook apply (ResourceExhausted, PermissionDenied).
    pub fn subscribe(&self, id: ConnId, topic: &str) -> Result<bool> {
        let installed = self.authenticator();
        self.subscribe_auth(
            id,
            topic,
            installed.as_deref().map(|a| a as &dyn Authenticator),
        )
    }

    /// [`Registry::subscribe`] with `auth` as the hook for this call.
    pub fn subscribe_with_auth(
        &self,
        id: ConnId,
        topic: &str,
        auth: &dyn Authenticator,
    ) -> Result<bool> {
        self.subscribe_auth(id, topic, Some(auth))
    }

    fn subscribe_auth(
        &self,
        id: ConnId,
        topic: &str,
        auth: Option<&dyn Authenticator>,
    ) -> Result<bool> {
        self.check_open()?;
        non_empty("topic", topic)?;
        let conn = self.inner.conn(id)?;
        if lock(&conn.topics).iter().any(|t| &**t == topic) {
            return Ok(false);
        }
        if let Some(auth) = auth {
            if let Err(why) = auth.authorize_subscribe(id, conn.user.as_deref(), topic) {
                return Err(Error::new(
                    Code::PermissionDenied,
                    format!(
                        "the authorize hook refused topic \"{topic}\" for connection {id}: {why}"
                    ),
                ));
            }
        }
        let s = &self.inner.settings;
        {
            let mut ix = self.inner.write();
            if !ix.conns.contains_key(&id) {
                return Err(not_found(id));
            }
            let mut topics = lock(&conn.topics);
            if topics.iter().any(|t| &**t == topic) {
                return Ok(false);
            }
            if topics.len() >= s.max_topics_per_conn {
                drop(topics);
                drop(ix);
                return Err(self.inner.limit(
                    "registry.max_topics_per_connection",
                    s.max_topics_per_conn,
                    format!(
                        "connection {id} is already subscribed to {} topics",
                        s.max_topics_per_conn
                    ),
                ));
            }
            if ix.topic_len(topic) >= s.max_per_topic {
                drop(topics);
                drop(ix);
                return Err(self.inner.limit(
                    "registry.max_connections_per_topic",
                    s.max_per_topic,
                    format!(
                        "topic \"{topic}\" already has {} subscribers",
                        s.max_per_topic
                    ),
                ));
            }
            let t = ix.intern_topic(topic);
            ix.subscribe(&conn, &t);
            let at = topics.binary_search(&t).unwrap_or_else(|i| i);
            topics.insert(at, t);
        }
        let user = conn.user.as_deref().map(str::to_string);
        self.inner.emit(
            EventKind::Subscribed,
            id,
            user,
            Some(topic.to_string()),
            None,
            format!("connection {id} subscribed to \"{topic}\""),
        );
        Ok(true)
    }

    /// Unsubscribes `id` from `topic`; returns false if it was not subscribed.
    pub fn unsubscribe(&self, id: ConnId, topic: &str) -> Result<bool> {
        self.check_open()?;
        non_empty("topic", topic)?;
        let conn = self.inner.conn(id)?;
        {
            let mut ix = self.inner.write();
            let mut topics = lock(&conn.topics);
            let Some(at) = topics.iter().position(|t| &**t == topic) else {
                return Ok(false);
            };
            topics.remove(at);
            ix.unsubscribe(id, topic);
        }
        let user = conn.user.as_deref().map(str::to_string);
        self.inner.emit(
            EventKind::Unsubscribed,
            id,
            user,
            Some(topic.to_string()),
            None,
            format!("connection {id} unsubscribed from \"{topic}\""),
        );
        Ok(true)
    }

    /// Sets (or with `None` removes) one metadata entry of connection `id`.
    pub fn set_metadata(&self, id: ConnId, key: &str, value: Option<&str>) -> Result<()> {
        self.check_open()?;
        non_empty("a metadata key", key)?;
        let conn = self.inner.conn(id)?;
        let mut meta = lock(&conn.meta);
        let at = meta.binary_search_by(|(k, _)| (**k).cmp(key));
        match (at, value) {
            (Ok(i), Some(v)) => meta[i].1 = v.into(),
            (Err(i), Some(v)) => meta.insert(i, (key.into(), v.into())),
            (Ok(i), None) => {
                meta.remove(i);
            }
            (Err(_), None) => {}
        }
        Ok(())
    }
}
