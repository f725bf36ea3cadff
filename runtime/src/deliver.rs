//! Handing a connection's decoded frames to the service, in order and
//! paced by its output; acting on a decode error once the frames before it
//! are delivered; telling the service when output has drained.

use crate::core::catch;
use crate::{CloseReason, Codec, ConnId, ProtocolError, Server, Service};

/// How many frames [`Service::frames_ahead`] sees at a time.
const FRAMES_AHEAD: usize = 16;

impl<S: Service> Server<S> {
    /// Hands decoded frames to the service in order, while the connection's
    /// output is under the soft limit and the service has not paused it:
    /// backpressure per frame, not per read, so a client that pipelines
    /// requests and never reads holds about the soft limit plus one reply,
    /// not a whole read's worth of replies. The rest wait on the connection
    /// (reading is held meanwhile) and are delivered after a write step
    /// brings the output back under the limit. A decode error is acted on
    /// once every frame before it is delivered.
    pub(crate) fn deliver_frames(&mut self, id: ConnId) {
        let soft = self.core.config.output_soft_limit;
        let Some(entry) = self.core.table.get_mut(id) else {
            return;
        };
        if entry
            .home()
            .is_some_and(|c| c.frames.is_empty() && c.decode_error.is_none())
        {
            return;
        }
        let Some(mut state) = entry.state.take() else {
            // Not open (yet, or `on_open` panicked): nothing is delivered.
            return;
        };
        let mut delivered = 0;
        // Frames already shown to `frames_ahead` and not yet delivered.
        let mut foreseen = 0;
        let mut finished = false;
        while let Some(entry) = self.core.table.get_mut(id) {
            let ending = entry.closing.is_some();
            let held = entry.reading_paused;
            let Some(conn) = entry.home_mut() else {
                break;
            };
            if ending || conn.failed.is_some() {
                // Closed by the service (QUIT) or failed: later frames are
                // dropped, as Redis does.
                conn.frames.clear();
                finished = true;
                break;
            }
            if held || conn.output_bytes() > soft {
                // Paused: the decode error (if any) waits for its frames.
                break;
            }
            if foreseen == 0 && conn.frames.len() > 1 {
                // In windows of FRAMES_AHEAD, so what is prefetched is used
                // before it can be evicted: a frame is shown once while
                // delivery runs on, and at most FRAMES_AHEAD times if it
                // keeps stopping (each call that shows a window delivers).
                let window = &mut conn.frames.iter().take(FRAMES_AHEAD);
                let service = &mut self.service;
                if catch(|| service.frames_ahead(&state, window)).is_none() {
                    self.core.service_panicked(Some(id));
                    break;
                }
                foreseen = conn.frames.len().min(FRAMES_AHEAD);
            }
            let Some(frame) = conn.frames.pop_front() else {
                finished = true;
                break;
            };
            foreseen = foreseen.saturating_sub(1);
            delivered += 1;
            let mut panicked = true;
            self.call_service(Some(id), |s, ctx| {
                s.on_frame(ctx, id, &mut state, frame);
                panicked = false;
            });
            if panicked {
                break;
            }
        }
        // One counter update per batch, not per frame.
        self.core.stats.frames_in.add(delivered);
        let Some(entry) = self.core.table.get_mut(id) else {
            return;
        };
        entry.state = Some(state);
        if !finished {
            return;
        }
        let error = entry.home_mut().and_then(|c| c.decode_error.take());
        if let Some(error) = error {
            self.protocol_error(id, error);
        }
    }

    fn protocol_error(&mut self, id: ConnId, error: ProtocolError) {
        let Some(entry) = self.core.table.get_mut(id) else {
            return;
        };
        let ending = entry.closing.is_some();
        let Some(conn) = entry.home_mut() else {
            return;
        };
        tracing::info!(parent: &conn.span, %error, "protocol error; closing");
        if !ending && conn.failed.is_none() {
            let codec = conn
                .codec
                .as_mut()
                .expect("frames are decoded only with a codec");
            match catch(|| codec.error_frame(&error)) {
                Some(Some(frame)) => {
                    let _ = self.core.send(id, frame);
                }
                Some(None) => {}
                None => {
                    tracing::error!(parent: &conn.span, "codec panicked in error_frame; closing");
                    self.core.abort(id, CloseReason::CodecPanic);
                    return;
                }
            }
        }
        let _ = self
            .core
            .request_close(id, CloseReason::Protocol(error.kind));
    }

    /// Calls `on_drained` once if the service asked for it and the output
    /// is at or below its mark.
    pub(crate) fn notify_if_drained(&mut self, id: ConnId) {
        let Some(entry) = self.core.table.get_mut(id) else {
            return;
        };
        let Some(mark) = entry.drain_below else {
            return;
        };
        if entry.home().is_none() || entry.output_bytes() > mark || entry.is_ending() {
            return;
        }
        entry.drain_below = None;
        self.call_with_state(id, |s, ctx, state| s.on_drained(ctx, id, state));
    }
}
