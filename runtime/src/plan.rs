//! What a connection should do next, derived from its state every time
//! (never stored in a flag that can drift).

/// The facts about one connection that decide its next step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConnFacts {
    /// A readable edge was seen and the socket has not been drained since.
    pub(crate) readable: bool,
    /// A writable edge was seen (or never blocked) since the last `WouldBlock`.
    pub(crate) writable: bool,
    /// Output is queued, or the transport holds bytes to send.
    pub(crate) has_output: bool,
    /// Input was received but not decoded yet (a step stops decoding at a
    /// frame cap): it needs a read step even without a readable edge, and
    /// even after the peer's EOF, which came after it.
    pub(crate) undecoded: bool,
    /// Input is held: output is over the soft limit (backpressure) or the
    /// service paused reading.
    pub(crate) hold_input: bool,
    /// Decoded frames wait to be delivered (held by the soft limit or a
    /// paused connection): the peer's EOF does not close the connection
    /// before they are served.
    pub(crate) pending_frames: bool,
    /// The peer closed its side.
    pub(crate) peer_eof: bool,
    /// The service keeps the connection open for writing after the peer's
    /// end (a half-close), until it shuts down its own side.
    pub(crate) keep_open: bool,
    /// A graceful close was requested: flush, then close.
    pub(crate) closing: bool,
    /// A fatal error happened: close now.
    pub(crate) failed: bool,
}

/// The IO a step should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

/// The loop's decision for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Run an IO step (on an IO thread, or inline).
    Io(Step),
    /// Nothing to do until an edge arrives or the service writes.
    Wait,
    /// Close it now (output flushed, or it failed).
    Close,
}

pub(crate) fn next(f: ConnFacts) -> Next {
    if f.failed {
        return Next::Close;
    }
    let write = f.has_output && f.writable;
    // After the peer's end, a new edge on a connection kept open for
    // writing can only be a reset or error: one read finds out which.
    let input = (f.readable && (!f.peer_eof || f.keep_open)) || f.undecoded;
    let read = input && !f.closing && !f.hold_input;
    if read || write {
        Next::Io(Step { read, write })
    } else if !f.has_output
        && (f.closing || (f.peer_eof && !f.undecoded && !f.pending_frames && !f.keep_open))
    {
        Next::Close
    } else {
        Next::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ConnFacts {
        ConnFacts {
            writable: true,
            ..ConnFacts::default()
        }
    }

    #[test]
    fn reads_when_readable_and_waits_when_not() {
        assert_eq!(
            next(ConnFacts {
                readable: true,
                ..facts()
            }),
            Next::Io(Step {
                read: true,
                write: false
            })
        );
        assert_eq!(next(facts()), Next::Wait);
    }

    #[test]
    fn writes_only_with_output_and_writability() {
        let pending = ConnFacts {
            has_output: true,
            ..facts()
        };
        assert_eq!(
            next(pending),
            Next::Io(Step {
                read: false,
                write: true
            })
        );
        assert_eq!(
            next(ConnFacts {
                writable: false,
                ..pending
            }),
            Next::Wait,
            "wait for the writable edge"
        );
    }

    #[test]
    fn backpressure_stops_reading_but_keeps_writing() {
        let f = ConnFacts {
            readable: true,
            has_output: true,
            hold_input: true,
            ..facts()
        };
        assert_eq!(
            next(f),
            Next::Io(Step {
                read: false,
                write: true
            })
        );
        assert_eq!(
            next(ConnFacts {
                writable: false,
                ..f
            }),
            Next::Wait
        );
    }

    #[test]
    fn closing_flushes_first_then_closes() {
        let closing = ConnFacts {
            closing: true,
            readable: true,
            has_output: true,
            ..facts()
        };
        assert_eq!(
            next(closing),
            Next::Io(Step {
                read: false,
                write: true
            }),
            "no more reading while closing"
        );
        assert_eq!(
            next(ConnFacts {
                has_output: false,
                ..closing
            }),
            Next::Close
        );
        let eof = ConnFacts {
            peer_eof: true,
            ..facts()
        };
        assert_eq!(next(eof), Next::Close);
    }

    #[test]
    fn undecoded_input_is_decoded_before_an_eof_closes() {
        let backlog = ConnFacts {
            undecoded: true,
            peer_eof: true,
            ..facts()
        };
        assert_eq!(
            next(backlog),
            Next::Io(Step {
                read: true,
                write: false
            }),
            "requests that came before the FIN are still served"
        );
        assert_eq!(
            next(ConnFacts {
                hold_input: true,
                has_output: true,
                writable: false,
                ..backlog
            }),
            Next::Wait,
            "backpressure holds the backlog too"
        );
        assert_eq!(
            next(ConnFacts {
                closing: true,
                ..backlog
            }),
            Next::Close,
            "a service close drops input not yet decoded"
        );
        assert_eq!(
            next(ConnFacts {
                undecoded: false,
                ..backlog
            }),
            Next::Close
        );
    }

    #[test]
    fn failure_closes_regardless_of_anything_else() {
        let f = ConnFacts {
            failed: true,
            readable: true,
            has_output: true,
            ..facts()
        };
        assert_eq!(next(f), Next::Close);
    }

    #[test]
    fn frames_waiting_for_delivery_keep_a_connection_open_after_the_peer_eof() {
        let f = ConnFacts {
            peer_eof: true,
            pending_frames: true,
            ..facts()
        };
        assert_eq!(next(f), Next::Wait, "served first, then closed");
        assert_eq!(
            next(ConnFacts {
                pending_frames: false,
                ..f
            }),
            Next::Close
        );
        assert_eq!(
            next(ConnFacts { closing: true, ..f }),
            Next::Close,
            "a requested close drops them"
        );
    }
}
