//! The plain data of sessions: what a program opens with and what it reads back.

/// What a program asks for when it opens a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionDetails {
    /// The data source (non-empty, registered with [`Sessions::register`](super::Sessions::register)).
    pub data_source: String,
    /// The session key within the data source (non-empty, registered).
    pub session_key: String,
    /// The streams to read, by name: non-empty and unique. May be empty (then the
    /// session reads only the main stream).
    pub streams: Vec<String>,
    /// The offset each stream starts at, one per stream in the same order; empty means
    /// every stream starts at 0. Offsets are never negative.
    pub stream_offsets: Vec<i64>,
    /// Whether the data source's main stream is left out (stored and reported; the
    /// program decides what it means for its data).
    pub exclude_main_stream: bool,
}

impl SessionDetails {
    /// Details for `data_source` / `session_key` with no streams.
    pub fn new(data_source: impl Into<String>, session_key: impl Into<String>) -> Self {
        SessionDetails {
            data_source: data_source.into(),
            session_key: session_key.into(),
            ..Default::default()
        }
    }

    /// Sets the stream names.
    pub fn streams<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.streams = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the start offsets (one per stream).
    pub fn offsets(mut self, offsets: impl IntoIterator<Item = i64>) -> Self {
        self.stream_offsets = offsets.into_iter().collect();
        self
    }

    /// Sets `exclude_main_stream`.
    pub fn exclude_main_stream(mut self, yes: bool) -> Self {
        self.exclude_main_stream = yes;
        self
    }
}

/// A stream's counters, as read by [`Sessions::get`](super::Sessions::get).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Data packets read from the source.
    pub data_packets_read: u64,
    /// Bytes of those packets.
    pub data_bytes_read: u64,
    /// Data packets delivered to the client.
    pub data_packets_delivered: u64,
    /// Bytes of those packets.
    pub data_bytes_delivered: u64,
    /// Essential packets read (a subset of the data packets the program marks).
    pub essential_packets_read: u64,
    /// Essential packets delivered.
    pub essential_packets_delivered: u64,
}

/// One stream of a session, as read by [`Sessions::get`](super::Sessions::get).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream's name.
    pub name: String,
    /// The next offset to deliver.
    pub position: i64,
    /// The committed offset (safe to resume from): the last one this session
    /// committed, else the one in the offset store when the stream was opened, else
    /// `None` (C: -1).
    pub committed: Option<i64>,
    /// Packet and byte counters.
    pub counters: StreamCounters,
}

/// A session, as read by [`Sessions::get`](super::Sessions::get) and [`Sessions::list`](super::Sessions::list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id (unique within the process, never reused).
    pub id: u64,
    /// The data source.
    pub data_source: String,
    /// The session key.
    pub session_key: String,
    /// Whether the main stream is left out.
    pub exclude_main_stream: bool,
    /// The streams, in the order they were opened or added.
    pub streams: Vec<StreamInfo>,
    /// Router (control) messages received on this session.
    pub router_messages_received: u64,
    /// Bytes of those messages.
    pub router_bytes_received: u64,
}

impl SessionInfo {
    /// The stream named `name`, if the session has it.
    pub fn stream(&self, name: &str) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// The details this session would be opened with now: its streams at their
    /// current positions.
    pub fn details(&self) -> SessionDetails {
        SessionDetails {
            data_source: self.data_source.clone(),
            session_key: self.session_key.clone(),
            streams: self.streams.iter().map(|s| s.name.clone()).collect(),
            stream_offsets: self.streams.iter().map(|s| s.position).collect(),
            exclude_main_stream: self.exclude_main_stream,
        }
    }
}
